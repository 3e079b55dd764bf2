//! Fixed-size byte newtypes: hex text in human-readable formats, raw bytes in binary ones.

use crate::PrimitiveError;

/// Decodes `0x`-prefixed (or bare) hex into exactly `N` bytes.
pub fn decode_hex_array<const N: usize>(
    what: &'static str,
    text: &str,
) -> Result<[u8; N], PrimitiveError> {
    let bytes = decode_hex(what, text)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| PrimitiveError::InvalidLength {
        what,
        expected: N,
        actual: bytes.len(),
    })
}

/// Decodes `0x`-prefixed (or bare) hex of any length.
pub fn decode_hex(what: &'static str, text: &str) -> Result<Vec<u8>, PrimitiveError> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    hex::decode(digits).map_err(|e| PrimitiveError::InvalidHex {
        what,
        reason: e.to_string(),
    })
}

/// Encodes bytes as lowercase `0x`-prefixed hex.
pub fn encode_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Serde adapter for variable-length byte strings: `0x` hex in human-readable formats, bytes
/// otherwise. Use with `#[serde(with = "sigil_primitives::bytes::hex_vec")]`.
pub mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Serialises `bytes`.
    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&super::encode_hex(bytes))
        } else {
            serializer.serialize_bytes(bytes)
        }
    }

    /// Deserialises bytes written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            super::decode_hex("bytes", &text).map_err(D::Error::custom)
        } else {
            serde_bytes_vec(deserializer)
        }
    }

    fn serde_bytes_vec<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        struct BytesVisitor;
        impl<'de> serde::de::Visitor<'de> for BytesVisitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

/// Serde adapter for 32-byte arrays (hashes): as [`hex_vec`], with the length checked.
pub mod hex_array {
    use serde::{Deserializer, Serializer, de::Error};

    /// Serialises `bytes`.
    pub fn serialize<S: Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        super::hex_vec::serialize(bytes, serializer)
    }

    /// Deserialises exactly 32 bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let bytes = super::hex_vec::deserialize(deserializer)?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| D::Error::custom(format!("expected 32 bytes, got {}", bytes.len())))
    }
}

/// Defines a fixed-size byte newtype with hex `Display`/`FromStr`, serde and a validation hook.
macro_rules! fixed_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr, $what:literal, $validate:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length of the encoding in bytes.
            pub const LEN: usize = $len;

            /// Builds the value from bytes, validating them.
            pub fn from_bytes(bytes: [u8; $len]) -> Result<Self, $crate::PrimitiveError> {
                let check: fn(&[u8; $len]) -> Result<(), $crate::PrimitiveError> = $validate;
                check(&bytes)?;
                Ok(Self(bytes))
            }

            /// Builds the value from a slice, validating its length and contents.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, $crate::PrimitiveError> {
                let array = <[u8; $len]>::try_from(bytes).map_err(|_| {
                    $crate::PrimitiveError::InvalidLength {
                        what: $what,
                        expected: $len,
                        actual: bytes.len(),
                    }
                })?;
                Self::from_bytes(array)
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The raw bytes, by value.
            pub fn to_bytes(self) -> [u8; $len] {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("0x")?;
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::PrimitiveError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::from_bytes($crate::bytes::decode_hex_array::<$len>($what, text)?)
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = $crate::PrimitiveError;
            fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
                Self::from_slice(bytes)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.collect_str(self)
                } else {
                    serializer.serialize_bytes(&self.0)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use serde::de::Error;
                if deserializer.is_human_readable() {
                    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                    text.parse().map_err(D::Error::custom)
                } else {
                    let bytes = $crate::bytes::hex_vec::deserialize(deserializer)?;
                    Self::from_slice(&bytes).map_err(D::Error::custom)
                }
            }
        }
    };
}

pub(crate) use fixed_bytes;
