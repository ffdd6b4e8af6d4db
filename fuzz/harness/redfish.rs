//! A BMC's answer bodies: the first byte picks success or failure, the rest is the body;
//! what decodes is read as every resource the client reads.

use ironcast::redfish::client::decode_body;
use ironcast::redfish::model::{
    error_detail, Collection, ComputerSystem, Manager, ServiceRoot, Task, VirtualMediaSlot,
};

pub fn run(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let success = first & 1 == 0;
    match decode_body("https://bmc.example/redfish/v1", success, body) {
        Ok(v) => {
            let _ = serde_json::from_value::<ServiceRoot>(v.clone());
            let _ = serde_json::from_value::<ComputerSystem>(v.clone());
            let _ = serde_json::from_value::<Manager>(v.clone());
            let _ = serde_json::from_value::<Collection>(v.clone());
            let _ = serde_json::from_value::<Task>(v.clone());
            if let Ok(slot) = serde_json::from_value::<VirtualMediaSlot>(v.clone()) {
                let _ = (slot.is_cd(), slot.is_loaded());
            }
            let _ = error_detail(&v);
        }
        Err(e) => {
            assert!(success, "a failure's body is never an error: {e}");
            assert!(e.to_string().contains("not valid JSON"), "{e}");
        }
    }
}
