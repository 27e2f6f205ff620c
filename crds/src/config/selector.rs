//! Label selectors, parsed once into matchers.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// One parsed requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// The label is present with one of the values (`matchLabels` entries become `In` with one
    /// value).
    In(String, BTreeSet<String>),
    /// The label is absent, or present with none of the values.
    NotIn(String, BTreeSet<String>),
    /// The label is present.
    Exists(String),
    /// The label is absent.
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A parsed `LabelSelector`: all requirements must hold. An empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// Why a selector is invalid: the field below the selector (e.g. `matchExpressions[0].values`)
/// and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError {
    /// Path below the selector, e.g. `matchLabels.app` or `matchExpressions[1].operator`.
    pub field: String,
    /// Offending value.
    pub value: String,
    /// What is wrong.
    pub message: String,
}

impl Selector {
    /// The selector that matches every label set.
    pub fn everything() -> Self {
        Selector::default()
    }

    /// Parses `matchLabels` and `matchExpressions` (`In`, `NotIn`, `Exists`, `DoesNotExist`),
    /// checking label key and value syntax.
    pub fn parse(sel: &LabelSelector) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            check_key(k).map_err(|message| SelectorError {
                field: format!("matchLabels.{k}"),
                value: k.clone(),
                message,
            })?;
            check_value(v).map_err(|message| SelectorError {
                field: format!("matchLabels.{k}"),
                value: v.clone(),
                message,
            })?;
            requirements.push(Requirement::In(k.clone(), BTreeSet::from([v.clone()])));
        }
        for (i, expr) in sel.match_expressions.iter().flatten().enumerate() {
            let at = |f: &str| format!("matchExpressions[{i}].{f}");
            check_key(&expr.key).map_err(|message| SelectorError {
                field: at("key"),
                value: expr.key.clone(),
                message,
            })?;
            let values: Vec<String> = expr.values.clone().unwrap_or_default();
            for (j, v) in values.iter().enumerate() {
                check_value(v).map_err(|message| SelectorError {
                    field: at(&format!("values[{j}]")),
                    value: v.clone(),
                    message,
                })?;
            }
            let set: BTreeSet<String> = values.iter().cloned().collect();
            let key = expr.key.clone();
            let req = match expr.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(SelectorError {
                        field: at("values"),
                        value: String::new(),
                        message: format!("operator {} needs at least one value", expr.operator),
                    });
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(SelectorError {
                        field: at("values"),
                        value: values.join(","),
                        message: format!("operator {} takes no values", expr.operator),
                    });
                }
                "In" => Requirement::In(key, set),
                "NotIn" => Requirement::NotIn(key, set),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::DoesNotExist(key),
                other => {
                    return Err(SelectorError {
                        field: at("operator"),
                        value: other.to_string(),
                        message: "operator must be one of In, NotIn, Exists, DoesNotExist"
                            .to_string(),
                    });
                }
            };
            requirements.push(req);
        }
        Ok(Selector { requirements })
    }

    /// Whether every requirement holds for `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether this selector matches every label set.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The parsed requirements.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
}

/// A list of selectors as used by `nodeSelectors`, `serviceSelectors`, ...: empty matches
/// everything, otherwise any one selector must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelectorSet {
    selectors: Vec<Selector>,
}

impl SelectorSet {
    /// The set that matches everything.
    pub fn everything() -> Self {
        SelectorSet::default()
    }

    /// Builds the set from already parsed selectors.
    pub fn new(selectors: Vec<Selector>) -> Self {
        SelectorSet { selectors }
    }

    /// Empty, or any selector matches.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selectors.is_empty() || self.selectors.iter().any(|s| s.matches(labels))
    }

    /// No selector given (matches everything).
    pub fn is_empty(&self) -> bool {
        self.selectors.is_empty()
    }

    /// Whether it matches every label set (empty, or one selector is empty).
    pub fn is_everything(&self) -> bool {
        self.selectors.is_empty() || self.selectors.iter().any(Selector::is_everything)
    }

    /// The selectors.
    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }
}

/// Label key: optional DNS-subdomain prefix (≤ 253) and `/`, then a name of ≤ 63 characters
/// made of alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok_prefix = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok_prefix {
            return Err("label key prefix must be a DNS subdomain".to_string());
        }
    }
    if name.is_empty() {
        return Err("label key must not be empty".to_string());
    }
    check_name_part(name).map_err(|m| format!("label key {m}"))
}

fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    check_name_part(value).map_err(|m| format!("label value {m}"))
}

fn check_name_part(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be at most 63 characters".to_string());
    }
    let bytes = s.as_bytes();
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err("must start and end with an alphanumeric character".to_string());
    }
    if !bytes
        .iter()
        .all(|&b| alnum(b) || b == b'-' || b == b'_' || b == b'.')
    {
        return Err("may contain only alphanumerics, '-', '_' and '.'".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_string(),
            operator: op.to_string(),
            values: if values.is_empty() {
                None
            } else {
                Some(values.iter().map(|v| v.to_string()).collect())
            },
        }
    }

    #[test]
    fn match_labels_and_expressions_are_anded() {
        let sel = Selector::parse(&LabelSelector {
            match_labels: Some(labels(&[("zone", "a")])),
            match_expressions: Some(vec![
                expr("rack", "In", &["r1", "r2"]),
                expr("drain", "DoesNotExist", &[]),
                expr("tier", "NotIn", &["edge"]),
                expr("kubernetes.io/hostname", "Exists", &[]),
            ]),
        })
        .unwrap();
        let base = [
            ("zone", "a"),
            ("rack", "r2"),
            ("kubernetes.io/hostname", "n1"),
        ];
        assert!(sel.matches(&labels(&base)));
        assert!(!sel.matches(&labels(&[("zone", "b"), ("rack", "r2")])));
        let mut drained = labels(&base);
        drained.insert("drain".into(), "yes".into());
        assert!(!sel.matches(&drained));
        let mut edge = labels(&base);
        edge.insert("tier".into(), "edge".into());
        assert!(!sel.matches(&edge));
        let mut other_rack = labels(&base);
        other_rack.insert("rack".into(), "r9".into());
        assert!(!sel.matches(&other_rack));
    }

    #[test]
    fn empty_selector_and_set_match_everything() {
        assert!(
            Selector::parse(&LabelSelector::default())
                .unwrap()
                .matches(&labels(&[]))
        );
        assert!(SelectorSet::everything().matches(&labels(&[("a", "b")])));
        let set = SelectorSet::new(vec![
            Selector::parse(&LabelSelector {
                match_labels: Some(labels(&[("a", "1")])),
                ..Default::default()
            })
            .unwrap(),
            Selector::parse(&LabelSelector {
                match_labels: Some(labels(&[("b", "2")])),
                ..Default::default()
            })
            .unwrap(),
        ]);
        assert!(set.matches(&labels(&[("b", "2")])));
        assert!(!set.matches(&labels(&[("c", "3")])));
    }

    #[test]
    fn invalid_selectors_name_the_field() {
        let bad_op = Selector::parse(&LabelSelector {
            match_expressions: Some(vec![expr("a", "Equals", &["x"])]),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad_op.field, "matchExpressions[0].operator");
        assert_eq!(bad_op.value, "Equals");

        let in_empty = Selector::parse(&LabelSelector {
            match_expressions: Some(vec![expr("a", "Exists", &[]), expr("b", "In", &[])]),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(in_empty.field, "matchExpressions[1].values");

        let exists_values = Selector::parse(&LabelSelector {
            match_expressions: Some(vec![expr("a", "Exists", &["x"])]),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(exists_values.field, "matchExpressions[0].values");

        let bad_key = Selector::parse(&LabelSelector {
            match_labels: Some(labels(&[("-bad", "x")])),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad_key.field, "matchLabels.-bad");

        let bad_value = Selector::parse(&LabelSelector {
            match_labels: Some(labels(&[("ok", "has space")])),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad_value.value, "has space");
    }
}
