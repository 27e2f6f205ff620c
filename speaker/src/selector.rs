//! Kubernetes label selector matching (`matchLabels` + `matchExpressions`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Labels of an object.
pub type Labels = BTreeMap<String, String>;

/// Whether `labels` satisfy `sel`. The empty selector matches everything; an unknown operator
/// matches nothing (fail closed).
pub fn matches_selector(sel: &LabelSelector, labels: &Labels) -> bool {
    if let Some(ml) = &sel.match_labels
        && ml.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return false;
    }
    for req in sel.match_expressions.iter().flatten() {
        let value = labels.get(&req.key);
        let values = req.values.as_deref().unwrap_or_default();
        let ok = match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => !value.is_some_and(|v| values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// A list of selectors as MetalLB reads them: empty list matches everything, otherwise any
/// one matching is enough.
pub fn matches_any(sels: &[LabelSelector], labels: &Labels) -> bool {
    sels.is_empty() || sels.iter().any(|s| matches_selector(s, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("zone", "a")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "role".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        assert!(matches_selector(&sel, &labels(&[("zone", "a")])));
        assert!(matches_selector(
            &sel,
            &labels(&[("zone", "a"), ("role", "web")])
        ));
        assert!(!matches_selector(
            &sel,
            &labels(&[("zone", "a"), ("role", "db")])
        ));
        assert!(!matches_selector(&sel, &labels(&[("zone", "b")])));
        assert!(matches_any(&[], &labels(&[])));
        assert!(!matches_any(&[sel], &labels(&[])));
        let bad = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "x".into(),
                operator: "Bogus".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert!(!matches_selector(&bad, &labels(&[("x", "1")])));
    }
}
