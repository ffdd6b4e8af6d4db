//! Config text as bytes round-trip: UTF-8 when valid, else Latin-1 (each byte one char), so
//! editing a config never rewrites bytes we did not mean to change.

use super::IsoError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Latin1,
}

/// Decodes config bytes losslessly.
pub fn decode(bytes: &[u8]) -> (String, Encoding) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), Encoding::Utf8),
        Err(_) => (bytes.iter().map(|&b| b as char).collect(), Encoding::Latin1),
    }
}

/// Encodes edited text back; Latin-1 text cannot take characters above U+00FF.
pub fn encode(text: &str, enc: Encoding, what: &str) -> Result<Vec<u8>, IsoError> {
    match enc {
        Encoding::Utf8 => Ok(text.as_bytes().to_vec()),
        Encoding::Latin1 => text
            .chars()
            .map(|c| u8::try_from(c as u32).ok())
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| {
                IsoError::BadArgs(format!(
                    "{what} is not UTF-8 (Latin-1?) and the arguments have characters it cannot hold"
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_bytes() {
        let all: Vec<u8> = (0..=255u8).collect();
        let (s, e) = decode(&all);
        assert_eq!(e, Encoding::Latin1);
        assert_eq!(encode(&s, e, "x").unwrap(), all);
        assert!(encode("é€", Encoding::Latin1, "x").is_err());
        assert_eq!(decode("é".as_bytes()), ("é".to_string(), Encoding::Utf8));
    }
}
