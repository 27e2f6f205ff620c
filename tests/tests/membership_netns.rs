//! Speaker membership over real UDP between network namespaces: three members on one
//! bridge find each other, a crashed member (task aborted, no leave) and a member that
//! leaves are removed by the others, a restarted member comes back, and a member with
//! another key is never admitted. Outcomes only; timings are in bench/membership.

use std::time::Duration;

use ferrolb_tests::membership_lab::{Lab, Member, names};
use ferrolb_tests::{require_root, wait_until};

const KEY: &[u8] = b"ferrolb-netns-membership-key-001";
const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

fn wait_live(m: &Member, want: &std::collections::BTreeSet<String>, who: &str) {
    let got = wait_until(WAIT, POLL, || (m.live() == *want).then_some(()));
    assert!(
        got.is_some(),
        "{who}: live set {:?}, want {:?}",
        m.live(),
        want
    );
}

#[test]
fn crashed_member_is_removed_and_a_restart_rejoins() {
    if !require_root("crashed_member_is_removed_and_a_restart_rejoins") {
        return;
    }
    let lab = Lab::new(3);
    let m0 = lab.start(0, lab.config(0, KEY));
    let m1 = lab.start(1, lab.config(1, KEY));
    let m2 = lab.start(2, lab.config(2, KEY));
    for (i, m) in [&m0, &m1, &m2].into_iter().enumerate() {
        wait_live(m, &names(&[0, 1, 2]), &format!("node-{i} join"));
    }
    m2.crash();
    wait_live(&m0, &names(&[0, 1]), "node-0 after node-2 crashed");
    wait_live(&m1, &names(&[0, 1]), "node-1 after node-2 crashed");
    let m = m0.metrics();
    assert!(m.member_down >= 1, "{m:?}");
    assert_eq!(m.leaves_received, 0, "a crash sends no leave");

    // Same node, same address, new process life.
    let m2 = lab.start(2, lab.config(2, KEY));
    for (i, m) in [&m0, &m1, &m2].into_iter().enumerate() {
        wait_live(m, &names(&[0, 1, 2]), &format!("node-{i} after restart"));
    }
    drop((m0, m1, m2));
}

#[test]
fn leaving_member_is_removed_and_a_stranger_is_never_admitted() {
    if !require_root("leaving_member_is_removed_and_a_stranger_is_never_admitted") {
        return;
    }
    let lab = Lab::new(4);
    let m0 = lab.start(0, lab.config(0, KEY));
    let m1 = lab.start(1, lab.config(1, KEY));
    let m2 = lab.start(2, lab.config(2, KEY));
    // node-3 knows every address but not the key.
    let m3 = lab.start(3, lab.config(3, b"some-other-cluster-key-000000000"));
    for (i, m) in [&m0, &m1, &m2].into_iter().enumerate() {
        wait_live(m, &names(&[0, 1, 2]), &format!("node-{i} join"));
    }
    // Let the stranger keep trying for a few probe and announce rounds.
    let tried = wait_until(WAIT, POLL, || {
        (m0.metrics().auth_failures >= 2 && m1.metrics().auth_failures >= 2).then_some(())
    });
    assert!(tried.is_some(), "stranger's datagrams were not counted");
    for (i, m) in [&m0, &m1, &m2].into_iter().enumerate() {
        assert_eq!(
            m.live(),
            names(&[0, 1, 2]),
            "node-{i} admitted the stranger"
        );
    }
    assert_eq!(m3.live(), names(&[3]), "the stranger admitted someone");

    m2.leave().expect("leave");
    wait_live(&m0, &names(&[0, 1]), "node-0 after node-2 left");
    wait_live(&m1, &names(&[0, 1]), "node-1 after node-2 left");
    let got = wait_until(WAIT, POLL, || {
        (m0.metrics().leaves_received >= 1).then_some(())
    });
    assert!(got.is_some(), "node-0 never counted the leave notice");
    drop((m0, m1, m3));
}
