//! `status.hardware` in BMO's HardwareDetails shape, from an Ironic inventory (BMO's
//! `pkg/hardwaredetails`) or, without one, from the node's properties (cpus, memory_mb,
//! cpu_arch, local_gb) that inspection records. Pure: no I/O.

use serde_json::{json, Map, Value};

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

fn n(v: &Value, k: &str) -> i64 {
    match v.get(k) {
        Some(Value::Number(x)) => x
            .as_i64()
            .or_else(|| x.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        Some(Value::String(x)) => x.parse().unwrap_or(0),
        _ => 0,
    }
}

/// Hardware details from `inventory` (Ironic's shape) when there is one, else `properties`.
pub fn details(inventory: Option<&Value>, properties: &Map<String, Value>) -> Value {
    match inventory {
        Some(inv) if inv.is_object() => from_inventory(inv),
        _ => from_properties(properties),
    }
}

fn from_inventory(inv: &Value) -> Value {
    let null = Value::Null;
    let cpu = inv.get("cpu").unwrap_or(&null);
    let mut flags: Vec<String> = cpu
        .get("flags")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    flags.sort();
    let clock = cpu
        .get("frequency")
        .and_then(|f| {
            f.as_f64()
                .or_else(|| f.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0.0);
    let vendor = inv.get("system_vendor").unwrap_or(&null);
    let firmware = vendor.get("firmware").unwrap_or(&null);
    let nics: Vec<Value> = inv
        .get("interfaces")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|i| {
                    let model = format!("{} {}", s(i, "vendor"), s(i, "product"));
                    json!({
                        "name": s(i, "name"),
                        "model": model.trim(),
                        "mac": s(i, "mac_address"),
                        "ip": s(i, "ipv4_address"),
                        "speedGbps": n(i, "speed_mbps") / 1000,
                        "vlanId": 0,
                        "pxe": i.get("pxe_enabled").and_then(Value::as_bool).unwrap_or(false),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let storage: Vec<Value> = inv
        .get("disks")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|d| {
                    let mut m = Map::new();
                    m.insert("name".into(), json!(s(d, "name")));
                    m.insert(
                        "rotational".into(),
                        json!(d
                            .get("rotational")
                            .and_then(Value::as_bool)
                            .unwrap_or(false)),
                    );
                    m.insert("sizeBytes".into(), json!(n(d, "size")));
                    m.insert("serialNumber".into(), json!(s(d, "serial")));
                    for (from, to) in [
                        ("vendor", "vendor"),
                        ("model", "model"),
                        ("wwn", "wwn"),
                        ("wwn_vendor_extension", "wwnVendorExtension"),
                        ("wwn_with_extension", "wwnWithExtension"),
                        ("hctl", "hctl"),
                    ] {
                        let v = s(d, from);
                        if !v.is_empty() {
                            m.insert(to.into(), json!(v));
                        }
                    }
                    Value::Object(m)
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "systemVendor": {
            "manufacturer": s(vendor, "manufacturer"),
            "productName": s(vendor, "product_name"),
            "serialNumber": s(vendor, "serial_number"),
        },
        "firmware": {"bios": {
            "date": s(firmware, "build_date"),
            "vendor": s(firmware, "vendor"),
            "version": s(firmware, "version"),
        }},
        "ramMebibytes": n(inv.get("memory").unwrap_or(&null), "physical_mb"),
        "nics": nics,
        "storage": storage,
        "cpu": {
            "arch": s(cpu, "architecture"),
            "model": s(cpu, "model_name"),
            "clockMegahertz": clock,
            "flags": flags,
            "count": n(cpu, "count"),
        },
        "hostname": s(inv, "hostname"),
    })
}

fn from_properties(p: &Map<String, Value>) -> Value {
    let obj = Value::Object(p.clone());
    let mut storage = Vec::new();
    let local_gb = n(&obj, "local_gb");
    if local_gb > 0 {
        storage.push(json!({"name": "", "rotational": false, "sizeBytes": local_gb * 1024 * 1024 * 1024, "serialNumber": ""}));
    }
    json!({
        "systemVendor": {"manufacturer": "", "productName": "", "serialNumber": ""},
        "firmware": {"bios": {"date": "", "vendor": "", "version": ""}},
        "ramMebibytes": n(&obj, "memory_mb"),
        "nics": [],
        "storage": storage,
        "cpu": {"arch": s(&obj, "cpu_arch"), "model": "", "clockMegahertz": 0.0, "flags": [], "count": n(&obj, "cpus")},
        "hostname": "",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_maps_to_bmo_shape() {
        let inv = json!({
            "cpu": {"count": 4, "model_name": "QEMU Virtual CPU", "frequency": "2494.224", "architecture": "x86_64", "flags": ["sse", "fpu"]},
            "memory": {"physical_mb": 4096, "total": 4294967296u64},
            "disks": [{"name": "/dev/sda", "size": 53687091200u64, "rotational": true, "vendor": "QEMU", "model": "QEMU HARDDISK", "serial": "drive-0", "hctl": "6:0:0:0"}],
            "interfaces": [{"name": "eth0", "mac_address": "52:54:00:12:34:56", "ipv4_address": "10.0.2.15", "vendor": "0x1af4", "product": "0x0001", "speed_mbps": 10000}],
            "system_vendor": {"manufacturer": "QEMU", "product_name": "Standard PC", "serial_number": "s1", "firmware": {"vendor": "SeaBIOS", "version": "1.16", "build_date": "04/01/2014"}},
            "hostname": "host-0",
        });
        let d = details(Some(&inv), &Map::new());
        assert_eq!(d["cpu"]["count"], 4);
        assert_eq!(d["cpu"]["clockMegahertz"], 2494.224);
        assert_eq!(d["cpu"]["flags"], json!(["fpu", "sse"]));
        assert_eq!(d["ramMebibytes"], 4096);
        assert_eq!(d["storage"][0]["sizeBytes"], 53687091200u64);
        assert_eq!(d["storage"][0]["serialNumber"], "drive-0");
        assert_eq!(d["nics"][0]["mac"], "52:54:00:12:34:56");
        assert_eq!(d["nics"][0]["model"], "0x1af4 0x0001");
        assert_eq!(d["nics"][0]["speedGbps"], 10);
        assert_eq!(d["systemVendor"]["productName"], "Standard PC");
        assert_eq!(d["firmware"]["bios"]["vendor"], "SeaBIOS");
    }

    #[test]
    fn properties_without_inventory() {
        let p = json!({"cpus": 2, "memory_mb": 1024, "cpu_arch": "x86_64", "local_gb": 10});
        let d = details(None, p.as_object().unwrap());
        assert_eq!(d["cpu"]["count"], 2);
        assert_eq!(d["ramMebibytes"], 1024);
        assert_eq!(d["storage"][0]["sizeBytes"], 10u64 << 30);
    }
}
