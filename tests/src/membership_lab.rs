//! A membership lab: one bridge namespace and N member namespaces on 192.0.2.0/24, each
//! member running `ferrolb_speaker::membership` on its own thread with its own tokio runtime
//! (so its UDP socket lives in its namespace).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ferrolb_speaker::membership::{
    Membership, MembershipConfig, MembershipError, MetricsSnapshot, Tuning,
};
use tokio::sync::mpsc;

use crate::netns::{Netns, veth};

/// Membership UDP port used in the lab.
pub const PORT: u16 = 7946;

/// Bridge plus members. Member `i` (0-based) has 192.0.2.(10+i) on `eth0`.
pub struct Lab {
    pub members: Vec<Netns>,
    // Dropped last: members first so their veths go with them.
    _bridge: Netns,
}

impl Lab {
    pub fn new(n: usize) -> Self {
        let bridge = Netns::new("mbr");
        bridge
            .ip(&["link", "add", "br0", "type", "bridge"])
            .expect("add bridge");
        bridge.ip(&["link", "set", "br0", "up"]).expect("bridge up");
        let mut members = Vec::new();
        for i in 0..n {
            let ns = Netns::new(&format!("m{i}"));
            let port = format!("p{i}");
            veth(&ns, "eth0", &bridge, &port);
            bridge
                .ip(&["link", "set", &port, "master", "br0"])
                .expect("enslave veth");
            ns.ip(&["addr", "add", &format!("{}/24", Self::ip(i)), "dev", "eth0"])
                .expect("member address");
            members.push(ns);
        }
        Lab {
            members,
            _bridge: bridge,
        }
    }

    pub fn ip(i: usize) -> String {
        format!("192.0.2.{}", 10 + i)
    }

    pub fn addr(i: usize) -> SocketAddr {
        SocketAddr::new(Self::ip(i).parse().expect("ip"), PORT)
    }

    /// A config for member `i` named `node-i`, seeded with every lab member.
    pub fn config(&self, i: usize, key: &[u8]) -> MembershipConfig {
        MembershipConfig {
            node_name: format!("node-{i}"),
            bind: Self::addr(i),
            advertise: None,
            seeds: (0..self.members.len()).map(Self::addr).collect(),
            key: key.to_vec(),
            tuning: Tuning::default(),
        }
    }

    /// Starts member `i` with `config` on a thread inside its namespace.
    pub fn start(&self, i: usize, config: MembershipConfig) -> Member {
        Member::spawn(&self.members[i], config)
    }
}

enum Cmd {
    Leave,
    Crash,
}

/// A member running on its own thread; see [`Member::leave`] and [`Member::crash`].
pub struct Member {
    cmds: mpsc::UnboundedSender<Cmd>,
    live: Arc<Mutex<BTreeSet<String>>>,
    metrics: Arc<Mutex<MetricsSnapshot>>,
    thread: Option<JoinHandle<Result<(), MembershipError>>>,
}

impl Member {
    fn spawn(ns: &Netns, config: MembershipConfig) -> Member {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let live = Arc::new(Mutex::new(BTreeSet::new()));
        let metrics = Arc::new(Mutex::new(MetricsSnapshot::default()));
        let (live2, metrics2) = (live.clone(), metrics.clone());
        let thread = ns.spawn_thread(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let (handle, mut watch) = Membership::start(config).await?;
                *live2.lock().unwrap() = watch.borrow().clone();
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                loop {
                    tokio::select! {
                        cmd = rx.recv() => {
                            *metrics2.lock().unwrap() = handle.metrics();
                            match cmd {
                                Some(Cmd::Leave) => return handle.leave().await,
                                // No leave: the task and its socket just vanish.
                                Some(Cmd::Crash) | None => { handle.abort(); return Ok(()) }
                            }
                        }
                        changed = watch.changed() => {
                            if changed.is_err() { return Ok(()); }
                            // The core counts before it publishes: metrics first.
                            *metrics2.lock().unwrap() = handle.metrics();
                            *live2.lock().unwrap() = watch.borrow().clone();
                        }
                        _ = tick.tick() => *metrics2.lock().unwrap() = handle.metrics(),
                    }
                }
            })
        });
        Member {
            cmds: tx,
            live,
            metrics,
            thread: Some(thread),
        }
    }

    /// The member's current live set.
    pub fn live(&self) -> BTreeSet<String> {
        self.live.lock().unwrap().clone()
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        *self.metrics.lock().unwrap()
    }

    /// Graceful leave; waits for the thread.
    pub fn leave(mut self) -> Result<(), MembershipError> {
        let _ = self.cmds.send(Cmd::Leave);
        self.join()
    }

    /// Abrupt stop: task aborted, runtime dropped, no leave sent.
    pub fn crash(mut self) {
        let _ = self.cmds.send(Cmd::Crash);
        let _ = self.join();
    }

    /// The thread's result (for example a start error).
    pub fn join(&mut self) -> Result<(), MembershipError> {
        match self.thread.take() {
            Some(t) => t.join().expect("member thread panicked"),
            None => Ok(()),
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Crash);
        let _ = self.join();
    }
}

/// Names `node-i` for the given indexes.
pub fn names(ids: &[usize]) -> BTreeSet<String> {
    ids.iter().map(|i| format!("node-{i}")).collect()
}
