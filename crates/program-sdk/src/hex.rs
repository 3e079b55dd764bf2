//! `0x`-hex byte strings, the convention for bytes in JSON configuration and auxiliary data.

/// Why a hex string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexError(String);

impl std::fmt::Display for HexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HexError {}

/// Decodes hex, with or without a `0x` prefix, in either case.
pub fn decode_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text)
        .as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(HexError(format!(
            "odd number of hex digits ({})",
            digits.len()
        )));
    }
    digits
        .chunks_exact(2)
        .map(|pair| Ok((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

fn nibble(digit: u8) -> Result<u8, HexError> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        b'A'..=b'F' => Ok(digit - b'A' + 10),
        _ => Err(HexError(format!(
            "invalid hex digit {:?}",
            char::from(digit)
        ))),
    }
}

/// Bytes written as a hex string in JSON (`"0x01ff"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct HexBytes(pub Vec<u8>);

impl HexBytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for HexBytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        decode_hex(&text)
            .map(HexBytes)
            .map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for HexBytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(2 + 2 * self.0.len());
        text.push_str("0x");
        for byte in &self.0 {
            text.push(char::from(DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
        }
        serializer.serialize_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_with_and_without_prefix() {
        assert_eq!(decode_hex("0x01fF"), Ok(vec![1, 255]));
        assert_eq!(decode_hex("01ff"), Ok(vec![1, 255]));
        assert_eq!(decode_hex(""), Ok(vec![]));
        assert!(decode_hex("0x1").is_err());
        assert!(decode_hex("0xzz").is_err());
    }

    #[test]
    fn json_round_trip() {
        let bytes: HexBytes = serde_json::from_str(r#""0xdead""#).expect("hex");
        assert_eq!(bytes.as_slice(), &[0xde, 0xad]);
        assert_eq!(serde_json::to_string(&bytes).expect("json"), r#""0xdead""#);
    }
}
