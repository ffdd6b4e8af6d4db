//! Where the agent learns whom to call: `ironcast.url=`, `ironcast.node=` and
//! `ironcast.token=` in the kernel command line (`/proc/cmdline`), put there by the conductor's
//! `begin` (virtual-media ISO args or the iPXE script).

/// The three things an agent needs to call in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub conductor_url: String,
    pub node: String,
    pub token: String,
}

/// Why a kernel command line cannot start the agent.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    #[error("the kernel command line has no {0}=: boot the agent ramdisk through the conductor (it adds ironcast.url, ironcast.node and ironcast.token), or pass --conductor-url, --node and --token")]
    Missing(&'static str),
    #[error("the kernel command line's ironcast.url={0:?} is not an http:// or https:// URL")]
    BadUrl(String),
}

/// Reads the assignment from a kernel command line (pure). Words are split on whitespace;
/// double quotes around a value are removed; the last occurrence of a key wins, as the kernel
/// does for its own parameters.
pub fn parse(cmdline: &str) -> Result<Assignment, CmdlineError> {
    let mut url = None;
    let mut node = None;
    let mut token = None;
    for word in cmdline.split_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        let value = value.trim_matches('"');
        let slot = match key {
            "ironcast.url" => &mut url,
            "ironcast.node" => &mut node,
            "ironcast.token" => &mut token,
            _ => continue,
        };
        *slot = Some(value.to_string()).filter(|v| !v.is_empty());
    }
    let url = url.ok_or(CmdlineError::Missing("ironcast.url"))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(CmdlineError::BadUrl(url));
    }
    Ok(Assignment {
        conductor_url: url.trim_end_matches('/').to_string(),
        node: node.ok_or(CmdlineError::Missing("ironcast.node"))?,
        token: token.ok_or(CmdlineError::Missing("ironcast.token"))?,
    })
}

/// The kernel args that carry an assignment (what `parse` reads back).
pub fn render(a: &Assignment) -> String {
    format!(
        "ironcast.url={} ironcast.node={} ironcast.token={}",
        a.conductor_url, a.node, a.token
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_table() {
        let ok = Assignment {
            conductor_url: "http://10.0.2.2:6385".into(),
            node: "n-1".into(),
            token: "tok_en".into(),
        };
        let cases: &[(&str, Result<Assignment, CmdlineError>)] = &[
            (
                "BOOT_IMAGE=/vmlinuz console=ttyS0 ironcast.url=http://10.0.2.2:6385/ ironcast.node=n-1 ironcast.token=tok_en quiet",
                Ok(ok.clone()),
            ),
            (
                "ironcast.token=\"tok_en\" ironcast.node=old ironcast.node=n-1\nironcast.url=http://10.0.2.2:6385",
                Ok(ok.clone()),
            ),
            ("console=ttyS0", Err(CmdlineError::Missing("ironcast.url"))),
            (
                "ironcast.url=http://h ironcast.token=t",
                Err(CmdlineError::Missing("ironcast.node")),
            ),
            (
                "ironcast.url=http://h ironcast.node=n ironcast.token=",
                Err(CmdlineError::Missing("ironcast.token")),
            ),
            (
                "ironcast.url=ftp://h ironcast.node=n ironcast.token=t",
                Err(CmdlineError::BadUrl("ftp://h".into())),
            ),
            ("ironcast.urlx=http://h", Err(CmdlineError::Missing("ironcast.url"))),
        ];
        for (line, want) in cases {
            assert_eq!(&parse(line), want, "{line}");
        }
        assert_eq!(parse(&render(&ok)), Ok(ok));
    }
}
