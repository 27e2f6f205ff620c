use super::*;

fn drain(q: &mut Queue, now: Instant) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(k) = q.pop(now) {
        out.push(k.to_string());
    }
    out
}

#[test]
fn a_key_is_queued_once_in_arrival_order() {
    let now = Instant::now();
    let mut q = Queue::default();
    for k in ["ns/a", "ns/b", "ns/a", "ns/c", "ns/b"] {
        q.push(k);
    }
    assert_eq!(q.len(), 3);
    assert_eq!(drain(&mut q, now), ["ns/a", "ns/b", "ns/c"]);
    assert!(q.is_empty());
}

#[test]
fn a_running_key_is_never_handed_out_twice_and_runs_again_after_a_change() {
    let now = Instant::now();
    let mut q = Queue::default();
    q.push("ns/a");
    let a = q.pop(now).unwrap();
    // Changed twice while running: not queued beside the running reconcile...
    q.push("ns/a");
    q.push("ns/a");
    assert_eq!(q.pop(now), None);
    // ...but once, right after it.
    q.done(&a, Next::AwaitChange, now);
    assert_eq!(drain(&mut q, now), ["ns/a"]);
    q.done("ns/a", Next::AwaitChange, now);
    assert_eq!(q.pop(now), None);
}

#[test]
fn after_runs_again_at_its_deadline_and_a_newer_outcome_replaces_it() {
    let t0 = Instant::now();
    let mut q = Queue::default();
    q.push("ns/a");
    q.push("ns/b");
    let a = q.pop(t0).unwrap();
    let b = q.pop(t0).unwrap();
    q.done(&a, Next::After(Duration::from_secs(300)), t0);
    q.done(&b, Next::After(Duration::from_secs(2)), t0);
    assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(2)));
    assert_eq!(q.pop(t0 + Duration::from_secs(1)), None, "not due yet");
    assert_eq!(drain(&mut q, t0 + Duration::from_secs(2)), ["ns/b"]);
    // b now succeeds: no deadline left for it.
    q.done("ns/b", Next::AwaitChange, t0 + Duration::from_secs(2));
    assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(300)));

    // A change to a before its deadline reconciles it now; the outcome replaces the deadline.
    q.push("ns/a");
    let a = q.pop(t0 + Duration::from_secs(3)).unwrap();
    q.done(&a, Next::AwaitChange, t0 + Duration::from_secs(3));
    assert_eq!(q.next_deadline(), None);
    assert_eq!(q.pop(t0 + Duration::from_secs(600)), None);
}

#[test]
fn a_due_key_that_is_already_queued_is_not_queued_twice() {
    let t0 = Instant::now();
    let mut q = Queue::default();
    q.push("ns/a");
    let a = q.pop(t0).unwrap();
    q.done(&a, Next::After(Duration::from_secs(1)), t0);
    q.push("ns/a");
    assert_eq!(
        drain(&mut q, t0 + Duration::from_secs(5)),
        ["ns/a"],
        "queued by the change and due: one reconcile"
    );
}

#[test]
fn forget_drops_a_deleted_services_deadline_and_done_of_an_unknown_key_is_ignored() {
    let t0 = Instant::now();
    let mut q = Queue::default();
    q.push("ns/a");
    let a = q.pop(t0).unwrap();
    q.done(&a, Next::After(Duration::from_secs(1)), t0);
    q.forget("ns/a");
    assert_eq!(q.next_deadline(), None);
    assert_eq!(q.pop(t0 + Duration::from_secs(5)), None);
    q.done("ns/x", Next::After(Duration::from_secs(1)), t0);
    assert_eq!(
        q.next_deadline(),
        None,
        "only a running key records an outcome"
    );
}

#[test]
fn ten_thousand_deadlines_all_come_due() {
    let t0 = Instant::now();
    let mut q = Queue::default();
    for i in 0..10_000 {
        q.push(&format!("ns/s{i}"));
    }
    while let Some(k) = q.pop(t0) {
        q.done(&k, Next::After(Duration::from_secs(300)), t0);
    }
    assert_eq!(q.next_deadline(), Some(t0 + Duration::from_secs(300)));
    assert_eq!(drain(&mut q, t0 + Duration::from_secs(300)).len(), 10_000);
}
