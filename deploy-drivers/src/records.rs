//! What a node's driver_internal_info says it holds, across every driver (ramdisk, iso-install,
//! direct): the lease and publication ids the drivers record before making them. The
//! conductor's start-up reconciliation releases whatever the cache or image server holds that
//! no node records.

use serde_json::{Map, Value};

use crate::direct::Held;
use crate::driver::NodeView;
use crate::iso_install;
use crate::ramdisk::{LEASE_KEY, PUBLICATION_KEY};

/// The ids one node records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    pub leases: Vec<String>,
    pub publications: Vec<String>,
}

/// Reads every driver's records from `driver_internal_info`.
pub fn recorded(driver_internal_info: &Map<String, Value>) -> Recorded {
    let mut out = Recorded::default();
    let text = |key: &str| {
        driver_internal_info
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    out.leases.extend(text(LEASE_KEY));
    out.publications.extend(text(PUBLICATION_KEY));
    out.leases.extend(text(iso_install::LEASE_KEY));
    let listed = driver_internal_info
        .get(iso_install::PUBLICATIONS_KEY)
        .and_then(Value::as_array);
    out.publications.extend(
        listed
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string),
    );
    let held = Held::load(&NodeView {
        driver_internal_info: driver_internal_info.clone(),
        ..NodeView::default()
    });
    out.leases
        .extend(held.image_lease.into_iter().chain(held.agent_lease));
    out.publications.extend(held.publications);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_ramdisk_iso_install_and_direct_records() {
        let dii = json!({
            "ramdisk_lease": "l1", "ramdisk_publication": "p1",
            "iso_install_lease": "l4", "iso_install_publications": ["p4", "p5"],
            "direct_held": {"image_lease": "l2", "agent_lease": "l3", "publications": ["p2", "p3"]},
            "unrelated": "x",
        });
        let r = recorded(dii.as_object().unwrap());
        assert_eq!(r.leases, ["l1", "l4", "l2", "l3"]);
        assert_eq!(r.publications, ["p1", "p4", "p5", "p2", "p3"]);
        assert_eq!(recorded(&Map::new()), Recorded::default());
    }
}
