//! The ring monitor alone: inputs with explicit times, outputs checked. No sockets.

use super::*;

fn peer(i: u8) -> Peer {
    Peer {
        addr: SocketAddr::from(([192, 0, 2, i], 7946)),
        bump: 1,
    }
}

fn tuning() -> WatchTuning {
    WatchTuning {
        heartbeat_period: Duration::from_millis(50),
        heartbeat_timeout: Duration::from_millis(160),
        confirm_timeout: Duration::from_millis(40),
        monitors: 2,
        relays: 2,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Five members on a ring with keys 10, 20, .. 50 (member i has key 10 i); we are 3.
fn ring_of_five() -> Watch {
    let mut w = Watch::new(tuning(), peer(3), "node-3");
    let _ = w.start();
    let members = (1..=5).map(|i| (u64::from(i) * 10, peer(i))).collect();
    let out = w.set_members(members, ms(0));
    // Watching 2 and 1 (our predecessors): one silence timer each.
    let timers: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            WatchOut::Schedule { after, timer } => Some((*after, timer.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(timers.len(), 2, "{out:?}");
    assert!(timers.iter().all(|(after, _)| *after == ms(160)));
    w
}

fn sends(out: &[WatchOut]) -> Vec<(SocketAddr, Kind)> {
    out.iter()
        .filter_map(|o| match o {
            WatchOut::Send { to, kind, .. } => Some((*to, *kind)),
            _ => None,
        })
        .collect()
}

#[test]
fn heartbeats_go_to_the_successors_and_the_predecessors_are_watched() {
    let mut w = ring_of_five();
    assert_eq!(w.monitors(), &[peer(4).addr, peer(5).addr]);
    let watched: Vec<_> = w.watched().copied().collect();
    assert_eq!(watched, vec![peer(1).addr, peer(2).addr]);
    let out = w.on_timer(WatchTimer::Heartbeat, ms(50));
    assert_eq!(
        sends(&out),
        vec![
            (peer(4).addr, Kind::Heartbeat),
            (peer(5).addr, Kind::Heartbeat)
        ]
    );
    let mut me = Vec::new();
    peer(3).encode(&mut me);
    assert!(matches!(&out[0], WatchOut::Send { payload, .. } if *payload == me));
    assert!(out.contains(&WatchOut::Schedule {
        after: ms(50),
        timer: WatchTimer::Heartbeat
    }));
}

#[test]
fn a_ring_smaller_than_the_monitor_count_watches_everyone_once() {
    let mut w = Watch::new(tuning(), peer(1), "node-1");
    let _ = w.set_members(vec![(1, peer(1)), (2, peer(2))], ms(0));
    assert_eq!(w.monitors(), &[peer(2).addr]);
    assert_eq!(w.watched().count(), 1);
}

#[test]
fn a_silent_member_is_probed_directly_and_through_relays_then_declared_dead() {
    let mut w = ring_of_five();
    // Member 2 heartbeats at 40 ms, then falls silent. The timer armed at 0 fires at 160:
    // only 120 ms of silence, so it re-arms for the remaining 40 ms.
    let _ = w.on_heartbeat(peer(2), ms(40));
    let out = w.on_timer(WatchTimer::Silence(peer(2).addr), ms(160));
    assert_eq!(
        out,
        vec![WatchOut::Schedule {
            after: ms(40),
            timer: WatchTimer::Silence(peer(2).addr)
        }]
    );
    let out = w.on_timer(WatchTimer::Silence(peer(2).addr), ms(200));
    // Direct, then the two members after it on the ring other than us (4 and 5).
    assert_eq!(
        sends(&out),
        vec![
            (peer(2).addr, Kind::Probe),
            (peer(4).addr, Kind::Probe),
            (peer(5).addr, Kind::Probe)
        ]
    );
    let WatchOut::Send { payload, .. } = &out[0] else {
        panic!("{out:?}")
    };
    let probe = Probe::decode(payload).unwrap();
    assert_eq!(probe.target, peer(2));
    assert_eq!(probe.reply_to, peer(3).addr);
    let confirm = WatchTimer::Confirm(peer(2).addr, probe.nonce);
    assert!(out.contains(&WatchOut::Schedule {
        after: ms(40),
        timer: confirm.clone()
    }));
    let out = w.on_timer(confirm, ms(240));
    assert_eq!(out, vec![WatchOut::Dead(peer(2))]);
    // Forgotten: no second verdict.
    assert!(w.watched().all(|a| *a != peer(2).addr));
}

#[test]
fn a_heartbeat_or_an_ack_during_confirmation_clears_the_suspicion() {
    for by_ack in [false, true] {
        let mut w = ring_of_five();
        let out = w.on_timer(WatchTimer::Silence(peer(1).addr), ms(160));
        let Some(WatchOut::Send { payload, .. }) = out.first() else {
            panic!("{out:?}")
        };
        let nonce = Probe::decode(payload).unwrap().nonce;
        let out = if by_ack {
            w.on_ack(
                ProbeAck {
                    nonce,
                    from: peer(1),
                },
                ms(170),
            )
        } else {
            w.on_heartbeat(peer(1), ms(170))
        };
        // Watching again from 170 ms.
        assert_eq!(
            out,
            vec![WatchOut::Schedule {
                after: ms(160),
                timer: WatchTimer::Silence(peer(1).addr)
            }]
        );
        assert!(
            w.on_timer(WatchTimer::Confirm(peer(1).addr, nonce), ms(200))
                .is_empty()
        );
    }
}

#[test]
fn an_ack_from_an_earlier_life_does_not_count() {
    let mut w = ring_of_five();
    let out = w.on_timer(WatchTimer::Silence(peer(1).addr), ms(160));
    let Some(WatchOut::Send { payload, .. }) = out.first() else {
        panic!("{out:?}")
    };
    let nonce = Probe::decode(payload).unwrap().nonce;
    let old = Peer { bump: 0, ..peer(1) };
    let _ = w.on_ack(ProbeAck { nonce, from: old }, ms(170));
    let _ = w.on_heartbeat(old, ms(170));
    assert_eq!(
        w.on_timer(WatchTimer::Confirm(peer(1).addr, nonce), ms(200)),
        vec![WatchOut::Dead(peer(1))]
    );
}

#[test]
fn probes_are_answered_relayed_or_dropped() {
    let mut w = ring_of_five();
    let for_me = Probe {
        nonce: 7,
        target: peer(3),
        reply_to: peer(1).addr,
    };
    let out = w.on_probe(for_me);
    assert_eq!(
        out,
        vec![WatchOut::Send {
            to: peer(1).addr,
            kind: Kind::ProbeAck,
            payload: ProbeAck {
                nonce: 7,
                from: peer(3)
            }
            .encode()
        }]
    );
    // For an earlier life of this address: silence, so that identity can be declared down.
    let old = Probe {
        target: Peer { bump: 0, ..peer(3) },
        ..for_me
    };
    assert!(w.on_probe(old).is_empty());
    // For someone else: relayed unchanged.
    let other = Probe {
        target: peer(5),
        ..for_me
    };
    assert_eq!(
        w.on_probe(other),
        vec![WatchOut::Send {
            to: peer(5).addr,
            kind: Kind::Probe,
            payload: other.encode()
        }]
    );
}

#[test]
fn a_member_that_leaves_the_ring_is_no_longer_watched_and_a_new_life_starts_fresh() {
    let mut w = ring_of_five();
    let members = [1u8, 3, 4, 5]
        .iter()
        .map(|i| (u64::from(*i) * 10, peer(*i)))
        .collect();
    let _ = w.set_members(members, ms(100));
    // Without 2, we watch 1 and 5.
    let watched: Vec<_> = w.watched().copied().collect();
    assert_eq!(watched, vec![peer(1).addr, peer(5).addr]);
    // A stale silence timer for 2 does nothing.
    assert!(
        w.on_timer(WatchTimer::Silence(peer(2).addr), ms(300))
            .is_empty()
    );
    // 1 restarts (new bump): watched afresh from now.
    let new1 = Peer { bump: 2, ..peer(1) };
    let members = [(10, new1), (30, peer(3)), (40, peer(4)), (50, peer(5))].to_vec();
    let out = w.set_members(members, ms(400));
    assert!(out.contains(&WatchOut::Schedule {
        after: ms(160),
        timer: WatchTimer::Silence(peer(1).addr)
    }));
}

#[test]
fn a_confirmation_timer_that_fires_late_probes_again_instead_of_judging() {
    let mut w = ring_of_five();
    let out = w.on_timer(WatchTimer::Silence(peer(1).addr), ms(160));
    let Some(WatchOut::Send { payload, .. }) = out.first() else {
        panic!("{out:?}")
    };
    let nonce = Probe::decode(payload).unwrap().nonce;
    // Due at 200 ms; this process was stalled and the timer runs at 300 ms.
    let out = w.on_timer(WatchTimer::Confirm(peer(1).addr, nonce), ms(300));
    assert_eq!(sends(&out).len(), 3, "probed again: {out:?}");
    let WatchOut::Send { payload, .. } = &out[0] else {
        panic!("{out:?}")
    };
    let again = Probe::decode(payload).unwrap().nonce;
    assert_ne!(again, nonce);
    // The ack that was waiting in the socket arrives now.
    let _ = w.on_ack(
        ProbeAck {
            nonce: again,
            from: peer(1),
        },
        ms(301),
    );
    assert!(
        w.on_timer(WatchTimer::Confirm(peer(1).addr, again), ms(340))
            .is_empty()
    );
}

#[test]
fn a_silence_timer_that_fires_late_is_not_evidence() {
    let mut w = ring_of_five();
    // Due at 160 ms; the host stalled and it runs at 400 ms: no probe, watched afresh.
    let out = w.on_timer(WatchTimer::Silence(peer(1).addr), ms(400));
    assert_eq!(
        out,
        vec![WatchOut::Schedule {
            after: ms(160),
            timer: WatchTimer::Silence(peer(1).addr)
        }]
    );
    // On time at 560 ms with nothing heard since 400: probed.
    let out = w.on_timer(WatchTimer::Silence(peer(1).addr), ms(560));
    assert_eq!(sends(&out).first(), Some(&(peer(1).addr, Kind::Probe)));
}
