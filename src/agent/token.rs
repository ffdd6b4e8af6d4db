//! Agent tokens: minted per agent boot by the conductor, carried to the ramdisk in its kernel
//! args, sent back by the agent on every call and compared in constant time.

use subtle::ConstantTimeEq;

/// A fresh token: 192 random bits from the OS-seeded CSPRNG, base64url (kernel-arg safe). One
/// generator serves image-server URLs and agent tokens.
pub fn mint() -> String {
    crate::imageserver::publish::new_token()
}

/// Whether `given` equals `expected`, taking the same time wherever they differ (the length
/// may leak; every token has the same length).
pub fn matches(expected: &str, given: &str) -> bool {
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_distinct_and_kernel_arg_safe() {
        let (a, b) = (mint(), mint());
        assert_ne!(a, b);
        assert!(a.len() * 6 >= 128, "{a}");
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn compare_table() {
        let t = mint();
        let mut flipped = t.clone().into_bytes();
        flipped[t.len() - 1] ^= 1;
        let flipped = String::from_utf8(flipped).unwrap();
        for (given, want) in [
            (t.as_str(), true),
            (flipped.as_str(), false),
            ("", false),
            (&t[..t.len() - 1], false),
            (&format!("{t}x"), false),
        ] {
            assert_eq!(matches(&t, given), want, "{given:?}");
        }
        assert!(!matches("", "x"));
    }
}
