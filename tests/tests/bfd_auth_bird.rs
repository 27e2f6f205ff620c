//! ferrolb BFD authentication (RFC 5880 §6.7.4) against BIRD 2.0.12's `protocol bfd` in
//! network namespaces: Meticulous Keyed SHA1 and Keyed SHA1 with the same key come Up on
//! both sides; a wrong key, and authentication on one side only, keep both Down while our
//! per-session drop counters say why.
//!
//! BIRD 2 sets authentication per interface (`authentication meticulous keyed sha1;
//! password "..." { id N; };`); its `neighbor` sessions on that interface use it. FRR 8.4's
//! bfdd has no authentication, so BIRD is the only peer in the lab that can check ours.

use std::time::Duration;

use ferrolb_tests::bfd_peers::{Bird, OurBfdPeer, bfd_pair};
use ferrolb_tests::{require_root, wait_until};

const UP_WAIT: Duration = Duration::from_secs(15);
/// How long a session that must stay Down is watched.
const DOWN_WATCH: Duration = Duration::from_secs(4);

/// BIRD at 192.0.2.1 with a session to us at 192.0.2.2; `auth` is the interface's
/// authentication lines (empty: none).
fn bird_conf(auth: &str) -> String {
    format!(
        "router id 192.0.2.1;\n\
         protocol device {{ }}\n\
         protocol bfd {{\n\
           interface \"eth0\" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; {auth} }};\n\
           neighbor 192.0.2.2;\n\
         }}\n"
    )
}

fn ours(n: &ferrolb_tests::Netns, auth: &[&str]) -> OurBfdPeer {
    let mut args = vec!["--rx", "100", "--tx", "100", "--mult", "3"];
    args.extend_from_slice(auth);
    OurBfdPeer::spawn(n, "192.0.2.2", "192.0.2.1", &args)
}

/// The last `auth ...` line our peer printed.
fn auth_line(p: &OurBfdPeer) -> String {
    p.output()
        .lines()
        .rev()
        .find(|l| l.starts_with("auth "))
        .unwrap_or_default()
        .to_string()
}

/// `name=N` from an `auth ...` line.
fn count(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Waits (bounded) until our auth line shows more than `min` drops of `reason`.
fn wait_drops(p: &OurBfdPeer, reason: &str, min: u64) -> Option<String> {
    wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let l = auth_line(p);
        (count(&l, reason) > min).then_some(l)
    })
}

fn assert_up_both(bird: &Bird, ours: &OurBfdPeer, what: &str) {
    bird.wait_state("192.0.2.2", "Up", UP_WAIT)
        .unwrap_or_else(|| {
            panic!(
                "{what}: BIRD never saw us up: {:?} ours: {}",
                bird.bfd_sessions(),
                ours.output()
            )
        });
    assert!(
        ours.wait_event("new=Up", Duration::from_secs(3)),
        "{what}: {}",
        ours.output()
    );
    // Up and staying Up: a second of authenticated packets later, no failure was counted.
    std::thread::sleep(Duration::from_secs(1));
    let line = auth_line(ours);
    assert!(line.contains("state=Up"), "{what}: {line}");
    assert_eq!(count(&line, "failures"), 0, "{what}: {line}");
    assert!(
        bird.bfd_sessions()
            .iter()
            .any(|s| s.addr == "192.0.2.2" && s.state == "Up"),
        "{what}: {:?}",
        bird.bfd_sessions()
    );
}

/// Neither side may come up while `DOWN_WATCH` passes.
fn assert_stays_down(bird: &Bird, ours: &OurBfdPeer, what: &str) {
    let up = wait_until(DOWN_WATCH, Duration::from_millis(100), || {
        bird.bfd_sessions()
            .into_iter()
            .find(|s| s.addr == "192.0.2.2" && s.state != "Down")
    });
    assert!(up.is_none(), "{what}: BIRD left Down: {up:?}");
    assert!(
        !ours.events().iter().any(|e| e.contains("new=Up")),
        "{what}: {}",
        ours.output()
    );
}

#[test]
fn meticulous_keyed_sha1_with_bird_comes_up() {
    if !require_root("meticulous_keyed_sha1_with_bird_comes_up") {
        return;
    }
    let (r, n) = bfd_pair("bam");
    let bird = Bird::start(
        &r,
        &bird_conf("authentication meticulous keyed sha1; password \"rack-7-secret\" { id 7; };"),
    );
    let ours = ours(
        &n,
        &[
            "--auth",
            "meticulous-keyed-sha1",
            "--key-id",
            "7",
            "--key",
            "rack-7-secret",
        ],
    );
    assert_up_both(&bird, &ours, "meticulous keyed sha1");
}

#[test]
fn keyed_sha1_with_bird_comes_up() {
    if !require_root("keyed_sha1_with_bird_comes_up") {
        return;
    }
    let (r, n) = bfd_pair("bak");
    let bird = Bird::start(
        &r,
        &bird_conf("authentication keyed sha1; password \"k3yed\" { id 200; };"),
    );
    let ours = ours(
        &n,
        &["--auth", "keyed-sha1", "--key-id", "200", "--key", "k3yed"],
    );
    assert_up_both(&bird, &ours, "keyed sha1");
}

#[test]
fn wrong_key_or_key_id_stays_down_with_the_reason_counted() {
    if !require_root("wrong_key_or_key_id_stays_down_with_the_reason_counted") {
        return;
    }
    let (r, n) = bfd_pair("baw");
    let bird = Bird::start(
        &r,
        &bird_conf("authentication meticulous keyed sha1; password \"right\" { id 1; };"),
    );
    let mut wrong_key = ours(
        &n,
        &[
            "--auth",
            "meticulous-keyed-sha1",
            "--key-id",
            "1",
            "--key",
            "wrong",
        ],
    );
    let line = wait_drops(&wrong_key, "auth_bad_hash", 2)
        .unwrap_or_else(|| panic!("no bad-hash drops: {}", wrong_key.output()));
    assert!(
        line.contains("last=hash mismatch with key id 1 (wrong key)"),
        "{line}"
    );
    assert_stays_down(&bird, &wrong_key, "wrong key");
    let more = count(&auth_line(&wrong_key), "auth_bad_hash");
    assert!(
        more > count(&line, "auth_bad_hash"),
        "the counter keeps rising"
    );
    wrong_key.stop();

    let wrong_id = ours(
        &n,
        &[
            "--auth",
            "meticulous-keyed-sha1",
            "--key-id",
            "3",
            "--key",
            "right",
        ],
    );
    let line = wait_drops(&wrong_id, "auth_key_id_mismatch", 2)
        .unwrap_or_else(|| panic!("no key-id drops: {}", wrong_id.output()));
    assert!(line.contains("last=wrong key id 1 (expected 3)"), "{line}");
    assert_stays_down(&bird, &wrong_id, "wrong key id");
}

#[test]
fn authentication_on_one_side_only_stays_down() {
    if !require_root("authentication_on_one_side_only_stays_down") {
        return;
    }
    // BIRD authenticates, we do not.
    let (r, n) = bfd_pair("bao");
    let bird = Bird::start(
        &r,
        &bird_conf("authentication keyed sha1; password \"only-bird\" { id 1; };"),
    );
    // No --auth: the example prints no auth line; read the drop at shutdown instead.
    let mut plain = ours(&n, &[]);
    assert_stays_down(&bird, &plain, "bird authenticates, we do not");
    let out = plain.stop();
    let dropped = out
        .lines()
        .find_map(|l| l.strip_prefix("drop auth_not_in_use="))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(dropped.is_some_and(|d| d > 0), "{out}");
    drop(bird);

    // We authenticate, BIRD does not.
    let bird = Bird::start(&r, &bird_conf(""));
    let ours = ours(
        &n,
        &["--auth", "keyed-sha1", "--key-id", "1", "--key", "only-us"],
    );
    let line = wait_drops(&ours, "auth_missing", 2)
        .unwrap_or_else(|| panic!("no auth-missing drops: {}", ours.output()));
    assert!(
        line.contains("last=packet without authentication (keyed SHA1 expected)"),
        "{line}"
    );
    assert_stays_down(&bird, &ours, "we authenticate, bird does not");
}
