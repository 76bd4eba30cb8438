//! Salesforce record ids: 15-character case-sensitive base-62 ids and their 18-character form with the
//! case checksum. Pure: knows nothing of HTTP, storage or which object an id belongs to beyond its prefix.

use std::fmt;

/// Maps a 5-bit "which characters are upper case" mask to one checksum character.
const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
/// Base-62 digits in ASCII order, so that fixed-width counters sort like numbers.
const BASE62_ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A well-formed record id, always held in its canonical 18-character form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SalesforceId([u8; 18]);

/// Why a string is not a record id. The HTTP layer maps these to Salesforce's error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    #[error("an id has 15 or 18 characters, got {0}")]
    WrongLength(usize),
    #[error("an id has only ASCII letters and digits")]
    NotAlphanumeric,
    /// 18 characters whose last three do not match the case of the first fifteen.
    #[error("the case checksum does not match")]
    BadChecksum,
}

impl SalesforceId {
    /// Accepts the 15-character form, or the 18-character form in any letter case: the checksum says
    /// which of the first 15 characters are upper case, which is what makes 18-character ids safe for
    /// case-insensitive systems.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let bytes = text.as_bytes();
        if !bytes.iter().all(u8::is_ascii_alphanumeric) {
            return Err(IdError::NotAlphanumeric);
        }
        match bytes.len() {
            15 => {
                let mut short = [0u8; 15];
                short.copy_from_slice(bytes);
                Ok(Self::from_short(short))
            }
            18 => Self::parse_long(bytes),
            other => Err(IdError::WrongLength(other)),
        }
    }

    fn parse_long(bytes: &[u8]) -> Result<Self, IdError> {
        let mut short = [0u8; 15];
        for (chunk_index, suffix_char) in bytes[15..18].iter().enumerate() {
            let mask = CHECKSUM_ALPHABET
                .iter()
                .position(|c| *c == suffix_char.to_ascii_uppercase())
                .ok_or(IdError::BadChecksum)?;
            for bit in 0..5 {
                let position = chunk_index * 5 + bit;
                let original = bytes[position];
                let must_be_upper = mask & (1 << bit) != 0;
                short[position] = if must_be_upper {
                    if !original.is_ascii_alphabetic() {
                        return Err(IdError::BadChecksum);
                    }
                    original.to_ascii_uppercase()
                } else {
                    original.to_ascii_lowercase()
                };
            }
        }
        Ok(Self::from_short(short))
    }

    /// Builds the canonical id from its 15 case-sensitive characters.
    pub fn from_short(short: [u8; 15]) -> Self {
        let mut full = [0u8; 18];
        full[..15].copy_from_slice(&short);
        for chunk in 0..3 {
            let mut mask = 0usize;
            for bit in 0..5 {
                if short[chunk * 5 + bit].is_ascii_uppercase() {
                    mask |= 1 << bit;
                }
            }
            full[15 + chunk] = CHECKSUM_ALPHABET[mask];
        }
        Self(full)
    }

    /// Makes the `sequence`-th id of an object: key prefix (3), instance (2), reserved `0`, then a
    /// 9-digit base-62 counter, so ids of one object sort in creation order.
    pub fn generate(key_prefix: KeyPrefix, instance: [u8; 2], sequence: u64) -> Self {
        let mut short = [b'0'; 15];
        short[..3].copy_from_slice(key_prefix.0);
        short[3..5].copy_from_slice(&instance);
        let mut remaining = sequence;
        for slot in short[6..15].iter_mut().rev() {
            *slot = BASE62_ALPHABET[(remaining % 62) as usize];
            remaining /= 62;
        }
        Self::from_short(short)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics ever get in, so this cannot fail; fall back to "" rather than panic.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The 15-character case-sensitive form.
    pub fn short(&self) -> &str {
        &self.as_str()[..15]
    }

    pub fn key_prefix(&self) -> &str {
        &self.as_str()[..3]
    }
}

impl fmt::Display for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for SalesforceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for SalesforceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The three-character object prefix of an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPrefix(&'static [u8; 3]);

impl KeyPrefix {
    pub const LEAD: KeyPrefix = KeyPrefix(b"00Q");
    pub const USER: KeyPrefix = KeyPrefix(b"005");
    pub const ORGANIZATION: KeyPrefix = KeyPrefix(b"00D");

    pub fn as_str(&self) -> &'static str {
        std::str::from_utf8(self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_real_ids() {
        // Pairs checked against real org ids (reference §5).
        for (short, long) in [
            ("00Q5f000008AsnD", "00Q5f000008AsnDEAS"),
            ("001D000000IqhSL", "001D000000IqhSLIAZ"),
            ("0053i000001Otat", "0053i000001OtatAAC"),
            ("003G000001SUbc4", "003G000001SUbc4IAD"),
            ("00558000001N0Ke", "00558000001N0KeAAK"),
            ("70130000001tcyI", "70130000001tcyIAAQ"),
            ("00Q3i000002MQiq", "00Q3i000002MQiqEAG"),
            ("a0D30000001n7Pi", "a0D30000001n7PiEAI"),
        ] {
            let from_short = SalesforceId::parse(short).expect("15-char id parses");
            assert_eq!(from_short.as_str(), long);
            assert_eq!(SalesforceId::parse(long), Ok(from_short));
            assert_eq!(from_short.short(), short);
        }
    }

    #[test]
    fn long_ids_are_case_repaired_by_their_checksum() {
        let id = SalesforceId::parse("00q5f000008asndeas").expect("lower-case 18-char id parses");
        assert_eq!(id.as_str(), "00Q5f000008AsnDEAS");
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(SalesforceId::parse("-1"), Err(IdError::NotAlphanumeric));
        assert_eq!(
            SalesforceId::parse("00Q3i000002MQiqEA"),
            Err(IdError::WrongLength(17))
        );
        // The recorded "malformed" id: right length, checksum does not fit (the real one ends in EAG).
        assert_eq!(
            SalesforceId::parse("00Q3i000002MQiqEA1"),
            Err(IdError::BadChecksum)
        );
        // '1' in the suffix claims a digit is upper case.
        assert_eq!(
            SalesforceId::parse("0053i000001OtatAA1"),
            Err(IdError::BadChecksum)
        );
    }

    #[test]
    fn generated_ids_sort_in_sequence_order_and_round_trip() {
        let first = SalesforceId::generate(KeyPrefix::LEAD, *b"8e", 1);
        let second = SalesforceId::generate(KeyPrefix::LEAD, *b"8e", 62);
        assert!(first < second);
        assert_eq!(first.key_prefix(), "00Q");
        assert_eq!(first.short(), "00Q8e0000000001");
        assert_eq!(SalesforceId::parse(second.as_str()), Ok(second));
    }
}
