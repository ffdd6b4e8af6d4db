//! Automation files as templates: `{{ name }}` is replaced by the node's value of `name`
//! (pure). A name that is not a variable, or a variable the node has no value for, is an
//! error naming it and what to give.

use std::collections::BTreeMap;

/// The variables an automation file may use, each with what to set when it has no value.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "hostname",
        "the config drive's meta_data.hostname, else the node's name",
    ),
    ("node_uuid", ""),
    (
        "root_device",
        "instance_info/root_device {\"name\": \"/dev/sda\"} (a device name hint)",
    ),
    ("ssh_keys", "the config drive's meta_data.public_keys"),
    ("ssh_key", "the config drive's meta_data.public_keys"),
    ("ssh_keys_json", "the config drive's meta_data.public_keys"),
    ("user_data", "the config drive's user_data"),
    (
        "callback_url",
        "an unattended install (the call-back is not used with interactive=true)",
    ),
    (
        "callback_token",
        "an unattended install (the call-back is not used with interactive=true)",
    ),
];

/// Renders `text`, with `values` holding every variable that has a value.
pub fn render(text: &str, values: &BTreeMap<&str, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!(
                "the automation file has a \"{{{{\" with no \"}}}}\" after it (byte {})",
                text.len() - rest.len() + start
            ));
        };
        let name = after[..end].trim();
        let Some((_, hint)) = VARIABLES.iter().find(|(n, _)| *n == name) else {
            let known: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "the automation file uses the template variable {name:?}, which does not exist (known: {})",
                known.join(", ")
            ));
        };
        match values.get(name) {
            Some(v) => out.push_str(v),
            None => {
                return Err(format!(
                    "the automation file uses the template variable {name:?}, which has no value for this node: give {hint}"
                ))
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_names_what_is_missing() {
        let mut v = BTreeMap::new();
        v.insert("hostname", "n1".to_string());
        assert_eq!(
            render("host {{hostname}} / {{ hostname }}", &v).unwrap(),
            "host n1 / n1"
        );
        let e = render("{{ nope }}", &v).unwrap_err();
        assert!(
            e.contains("\"nope\"") && e.contains("known: hostname"),
            "{e}"
        );
        let e = render("disk {{ root_device }}", &v).unwrap_err();
        assert!(
            e.contains("root_device") && e.contains("instance_info/root_device"),
            "{e}"
        );
        let e = render("x {{ hostname", &v).unwrap_err();
        assert!(e.contains("byte 2"), "{e}");
        assert_eq!(render("no vars } {", &v).unwrap(), "no vars } {");
    }
}
