//! `metadata.uid` and `metadata.resourceVersion` of a Service, kept without heap allocations
//! in the usual case: the API server's UIDs are lowercase UUIDs and its resource versions
//! decimal numbers, so they fit in 16 and 8 bytes. Anything else is kept as given: both are
//! opaque strings to clients, and Events must name them exactly.

use std::fmt;

/// A UID: a canonical lowercase UUID as 16 bytes, or the string as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uid {
    Uuid([u8; 16]),
    Other(Box<str>),
}

impl Uid {
    pub fn new(s: &str) -> Uid {
        match parse_uuid(s) {
            Some(b) => Uid::Uuid(b),
            None => Uid::Other(s.into()),
        }
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uid::Other(s) => f.write_str(s),
            Uid::Uuid(b) => {
                for (i, byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// `8-4-4-4-12` lowercase hex digits; `None` for anything else (then kept as a string, so
/// formatting gives back exactly what was parsed).
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b[i] != b'-' {
                return None;
            }
            i += 1;
            continue;
        }
        out[n] = (hex(b[i])? << 4) | hex(b[i + 1])?;
        n += 1;
        i += 2;
    }
    Some(out)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// A resource version: a decimal number without leading zeros, or the string as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Version {
    Number(u64),
    Other(Box<str>),
}

impl Version {
    pub fn new(s: &str) -> Version {
        match s.parse::<u64>() {
            Ok(n) if n.to_string() == s => Version::Number(n),
            _ => Version::Other(s.into()),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Number(n) => write!(f, "{n}"),
            Version::Other(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_and_versions_print_exactly_as_given() {
        for s in [
            "0b9c3d4e-5f60-4718-a9b0-c1d2e3f40516",
            "0B9C3D4E-5F60-4718-A9B0-C1D2E3F40516",
            "0b9c3d4e5f604718a9b0c1d2e3f40516",
            "u1",
            "",
            "0b9c3d4e-5f60-4718-a9b0-c1d2e3f4051g",
        ] {
            assert_eq!(Uid::new(s).to_string(), s);
        }
        for s in [
            "7",
            "0",
            "18446744073709551615",
            "007",
            "-1",
            "",
            "12a",
            "99999999999999999999",
        ] {
            assert_eq!(Version::new(s).to_string(), s);
        }
    }

    #[test]
    fn the_usual_forms_take_no_heap() {
        assert!(matches!(
            Uid::new("0b9c3d4e-5f60-4718-a9b0-c1d2e3f40516"),
            Uid::Uuid(_)
        ));
        assert!(matches!(
            Uid::new("0B9C3D4E-5F60-4718-A9B0-C1D2E3F40516"),
            Uid::Other(_)
        ));
        assert_eq!(Version::new("123456"), Version::Number(123456));
        assert!(matches!(Version::new("007"), Version::Other(_)));
    }
}
