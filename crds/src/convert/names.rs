//! Community spellings: MetalLB itself parses no well-known community names (`no-export` is
//! only an alias users define, see reference/metallb.md §2.6), but configurations in the wild
//! write them as FRR/RFC 1997 names in several spellings. ferrolb understands the well-known
//! names in its own spelling (`no-export`, ...), so every spelling is mapped to that.

use crate::config::WELL_KNOWN;

/// The ferrolb spelling of a well-known community written as `NO_EXPORT`, `no_export`,
/// `No-Export`, `noExport`, ... ; `None` when `text` is no such name.
pub fn well_known_name(text: &str) -> Option<&'static str> {
    let squashed: String = text
        .trim()
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    WELL_KNOWN
        .iter()
        .map(|(name, _)| *name)
        .find(|name| name.replace('-', "") == squashed)
}

/// A community as ferrolb should read it: `aliases` (name -> value, from the input) are
/// resolved first, then well-known names are respelled; anything else is kept as written.
pub fn community(text: &str, aliases: &[(String, String)]) -> String {
    if let Some((_, v)) = aliases.iter().find(|(n, _)| n == text) {
        return v.clone();
    }
    match well_known_name(text) {
        Some(name) => name.to_string(),
        None => text.to_string(),
    }
}
