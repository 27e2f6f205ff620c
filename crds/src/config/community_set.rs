//! `Community` -> [`CommunitySet`].

use std::collections::BTreeMap;

use super::error::{ConfigError, Kind, ObjectRef};
use crate::v1alpha1::Community;
use crate::value::{CommunityValue, WELL_KNOWN};

/// The aliases defined by one `Community` object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommunitySet {
    /// Object name.
    pub name: String,
    /// Alias name -> value.
    pub aliases: BTreeMap<String, CommunityValue>,
}

/// Validates one object; `earlier` holds the objects already accepted (aliases must be unique
/// across objects).
pub(super) fn validate(
    obj: &Community,
    earlier: &BTreeMap<String, CommunitySet>,
) -> Result<CommunitySet, Vec<ConfigError>> {
    let me = ObjectRef::new(Kind::Community, &obj.metadata);
    let mut errors = Vec::new();
    let mut aliases = BTreeMap::new();
    for (i, alias) in obj.spec.communities.iter().enumerate() {
        let at = format!("spec.communities[{i}]");
        if alias.name.trim().is_empty() {
            errors.push(me.error(format!("{at}.name"), None, "alias name is required"));
            continue;
        }
        if WELL_KNOWN.iter().any(|(n, _)| *n == alias.name) || alias.name.contains(':') {
            errors.push(me.error(
                format!("{at}.name"),
                Some(&alias.name),
                "alias name must not look like a community value or a well-known name",
            ));
            continue;
        }
        if let Some(other) = earlier
            .values()
            .find(|c| c.name != me.name && c.aliases.contains_key(&alias.name))
        {
            errors.push(me.error(
                format!("{at}.name"),
                Some(&alias.name),
                format!("alias already defined by Community {}", other.name),
            ));
            continue;
        }
        match CommunityValue::parse(&alias.value) {
            Ok(v) => {
                if aliases.insert(alias.name.clone(), v).is_some() {
                    errors.push(me.error(
                        format!("{at}.name"),
                        Some(&alias.name),
                        "alias defined twice in this object",
                    ));
                }
            }
            Err(m) => errors.push(me.error(format!("{at}.value"), Some(&alias.value), m)),
        }
    }
    if errors.is_empty() {
        Ok(CommunitySet {
            name: me.name,
            aliases,
        })
    } else {
        Err(errors)
    }
}
