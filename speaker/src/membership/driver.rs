//! The tokio side: moves datagrams between the UDP socket and the core, arms the timers the
//! core asks for, publishes the live set. No protocol decisions here.

use std::collections::BTreeSet;

use futures::StreamExt;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio_util::time::DelayQueue;
use tracing::{debug, warn};

use super::Command;
use super::swim::{Core, CoreTimer, MAX_DATAGRAM, Output};

pub(super) async fn run(
    mut core: Core,
    socket: UdpSocket,
    mut cmds: mpsc::UnboundedReceiver<Command>,
    live: watch::Sender<BTreeSet<String>>,
) {
    let span = tracing::info_span!("membership", node = %core.identity().name);
    let _enter = span.enter();
    let mut timers: DelayQueue<CoreTimer> = DelayQueue::new();
    let mut buf = vec![0u8; MAX_DATAGRAM + 64];
    let origin = tokio::time::Instant::now();
    let out = core.start(origin.elapsed());
    apply(out, &socket, &mut timers, &live).await;
    loop {
        let out = tokio::select! {
            cmd = cmds.recv() => match cmd {
                Some(Command::SetSeeds(seeds)) => core.set_seeds(seeds),
                Some(Command::Leave(done)) => {
                    let out = core.leave();
                    apply(out, &socket, &mut timers, &live).await;
                    let _ = done.send(());
                    return;
                }
                // Handle dropped: stop quietly, like a crash.
                None => return,
            },
            recv = socket.recv_from(&mut buf) => match recv {
                Ok((n, from)) => core.handle_datagram(from, &buf[..n], origin.elapsed()),
                Err(error) => {
                    // ICMP port unreachable from a dead peer shows up here on Linux.
                    debug!(%error, "membership recv error");
                    continue;
                }
            },
            Some(expired) = timers.next() => core.handle_timer(expired.into_inner(), origin.elapsed()),
        };
        apply(out, &socket, &mut timers, &live).await;
    }
}

async fn apply(
    out: Vec<Output>,
    socket: &UdpSocket,
    timers: &mut DelayQueue<CoreTimer>,
    live: &watch::Sender<BTreeSet<String>>,
) {
    for o in out {
        match o {
            Output::Send { to, data } => {
                if let Err(error) = socket.send_to(&data, to).await {
                    warn!(%to, %error, "failed to send membership datagram");
                }
            }
            Output::Schedule { after, timer } => {
                timers.insert(timer, after);
            }
            Output::Live(set) => {
                live.send_replace(set);
            }
        }
    }
}
