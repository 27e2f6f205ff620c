//! BGP communities: standard (RFC 1997), large (RFC 8092), well-known names and aliases.

use std::collections::BTreeMap;
use std::fmt;

/// A community value attached to announced routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CommunityValue {
    /// RFC 1997 community, `high:low` as one 32-bit value.
    Standard(u32),
    /// RFC 8092 large community: global administrator, local data 1, local data 2.
    Large(u32, u32, u32),
}

/// Well-known standard communities accepted by name (RFC 1997, 3765, 7999, 8326, 9494).
pub const WELL_KNOWN: &[(&str, u32)] = &[
    ("graceful-shutdown", 0xFFFF_0000),
    ("accept-own", 0xFFFF_0001),
    ("llgr-stale", 0xFFFF_0006),
    ("no-llgr", 0xFFFF_0007),
    ("blackhole", 0xFFFF_029A),
    ("no-export", 0xFFFF_FF01),
    ("no-advertise", 0xFFFF_FF02),
    ("no-export-subconfed", 0xFFFF_FF03),
    ("local-as", 0xFFFF_FF03),
    ("no-peer", 0xFFFF_FF04),
];

impl CommunityValue {
    /// Parses an explicit value: `65000:100`, `large:1:2:3`, or a well-known name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Some((_, v)) = WELL_KNOWN.iter().find(|(n, _)| *n == t) {
            return Ok(CommunityValue::Standard(*v));
        }
        if let Some(rest) = t.strip_prefix("large:") {
            let parts: Vec<&str> = rest.split(':').collect();
            if parts.len() != 3 {
                return Err("a large community is large:GLOBAL:LOCAL1:LOCAL2".to_string());
            }
            let mut n = [0u32; 3];
            for (slot, p) in n.iter_mut().zip(&parts) {
                *slot = p
                    .parse()
                    .map_err(|_| format!("large community part {p:?} is not a 32-bit number"))?;
            }
            return Ok(CommunityValue::Large(n[0], n[1], n[2]));
        }
        if let Some((a, b)) = t.split_once(':') {
            let hi: u16 = a
                .parse()
                .map_err(|_| format!("community part {a:?} is not a 16-bit number"))?;
            let lo: u16 = b
                .parse()
                .map_err(|_| format!("community part {b:?} is not a 16-bit number"))?;
            return Ok(CommunityValue::Standard(
                (u32::from(hi) << 16) | u32::from(lo),
            ));
        }
        Err(
            "not a community: use 65000:100, large:1:2:3, a well-known name like no-export, \
             or the name of a Community alias"
                .to_string(),
        )
    }

    /// The message of the CEL rule for community strings.
    pub const CEL_MESSAGE: &'static str = "a community is HIGH:LOW with 16-bit parts (65000:100) or \
         large:GLOBAL:LOCAL1:LOCAL2 with 32-bit parts";

    /// `x-kubernetes-validations` for a community string (`self`): explicit values must fit
    /// their bits, as [`CommunityValue::parse`] checks; names (well-known or aliases) pass.
    pub fn cel_validations() -> serde_json::Value {
        let part = |i: usize, max: u32| format!("int(self.split(':')[{i}]) <= {max}");
        let large = format!(
            "self.matches('^large:[0-9]{{1,10}}:[0-9]{{1,10}}:[0-9]{{1,10}}$') && {} && {} && {}",
            part(1, u32::MAX),
            part(2, u32::MAX),
            part(3, u32::MAX)
        );
        let standard = format!(
            "self.matches('^[0-9]{{1,5}}:[0-9]{{1,5}}$') && {} && {}",
            part(0, u32::from(u16::MAX)),
            part(1, u32::from(u16::MAX))
        );
        serde_json::json!([{
            "rule": format!(
                "!self.contains(':') || (self.startsWith('large:') ? ({large}) : ({standard}))"
            ),
            "message": Self::CEL_MESSAGE,
        }])
    }

    /// Parses `text` as an explicit value, else looks it up in `aliases`.
    pub fn resolve(text: &str, aliases: &BTreeMap<String, CommunityValue>) -> Result<Self, String> {
        match CommunityValue::parse(text) {
            Ok(v) => Ok(v),
            Err(e) => {
                if let Some(v) = aliases.get(text.trim()) {
                    Ok(*v)
                } else if text.contains(':') {
                    Err(e)
                } else {
                    Err("neither a community value nor the name of a Community alias".to_string())
                }
            }
        }
    }
}

impl fmt::Display for CommunityValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommunityValue::Standard(v) => write!(f, "{}:{}", v >> 16, v & 0xFFFF),
            CommunityValue::Large(a, b, c) => write!(f, "large:{a}:{b}:{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_standard_large_and_well_known() {
        assert_eq!(
            CommunityValue::parse("65000:100"),
            Ok(CommunityValue::Standard(65000 << 16 | 100))
        );
        assert_eq!(
            CommunityValue::parse("large:4200000000:1:2"),
            Ok(CommunityValue::Large(4_200_000_000, 1, 2))
        );
        assert_eq!(
            CommunityValue::parse("no-export"),
            Ok(CommunityValue::Standard(0xFFFF_FF01))
        );
        assert_eq!(
            CommunityValue::parse("no-export").unwrap().to_string(),
            "65535:65281"
        );
        assert_eq!(CommunityValue::Large(1, 2, 3).to_string(), "large:1:2:3");
        assert!(CommunityValue::parse("65536:1").is_err());
        assert!(CommunityValue::parse("large:1:2").is_err());
        assert!(CommunityValue::parse("large:1:2:x").is_err());
        assert!(CommunityValue::parse("1:2:3").is_err());
    }

    #[test]
    fn resolves_aliases() {
        let aliases = BTreeMap::from([("transit".to_string(), CommunityValue::Standard(7))]);
        assert_eq!(
            CommunityValue::resolve("transit", &aliases),
            Ok(CommunityValue::Standard(7))
        );
        assert!(
            CommunityValue::resolve("unknown", &aliases)
                .unwrap_err()
                .contains("alias")
        );
    }
}
