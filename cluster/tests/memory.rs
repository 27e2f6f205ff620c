//! A rejected "billion laughs" file costs no lasting memory (its own process: RSS is per
//! process, so this file holds one test).

mod common;

use common::{TempDir, service, services};
use ferrolb_cluster::{Directory, Metrics, Options};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Five levels of ten aliases: 10^5 scalars if expanded (within serde-saphyr's default budget).
fn alias_bomb() -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: lol}\nspec:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..5 {
        let p = i - 1;
        s.push_str(&format!(
            "  a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    s
}

#[test]
fn an_alias_bomb_is_rejected_with_its_limit_and_memory_stays_at_baseline() {
    let dir = TempDir::new("bomb");
    dir.write("a.yaml", &service("a"));
    let mut d = Directory::new(Options::new(dir.path()), Metrics::default());
    d.scan();
    let baseline = rss_kib();
    for round in 0..5 {
        // A new version each round (the loader skips files it has already refused).
        dir.write("a.yaml", &format!("{}# {round}\n", alias_bomb()));
        d.scan();
        let v = d.view();
        assert_eq!(services(&v), ["a"], "last good version kept");
        let e = v.file_errors[0].to_string();
        assert!(e.starts_with("a.yaml:"), "{e}");
        assert!(
            e.contains("events replayed by aliases"),
            "names the limit: {e}"
        );
    }
    let after = rss_kib();
    assert!(
        after < baseline + 4096,
        "RSS grew from {baseline} KiB to {after} KiB"
    );
}
