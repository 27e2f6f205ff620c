//! The shared single-object cases (`cases/mod.rs`) through `Config::build`; the same table
//! runs against the real API server's schema and CEL rules in `tests/tests/kube_manifests.rs`.

mod cases;
mod common;

use common::build;

#[test]
fn config_build_agrees_with_the_case_table() {
    let mut failures = Vec::new();
    for (i, case) in cases::CASES.iter().enumerate() {
        let out = build(&cases::document(case, &format!("c{i}"), "ferrolb-system"));
        match case.invalid {
            None => {
                if !out.errors.is_empty() {
                    failures.push(format!(
                        "case {i} ({}) should be valid: {:?}",
                        case.kind, out.errors
                    ));
                }
            }
            Some((field, msg)) => {
                let ok = out.errors.len() == 1
                    && out.errors[0].field == field
                    && out.errors[0].message.contains(msg);
                if !ok {
                    failures.push(format!(
                        "case {i} ({} {:?}): want one error at {field} containing {msg:?}, got {:?}",
                        case.kind,
                        case.spec,
                        out.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
