//! The socket task of one interface: reads frames in batches into the interface's
//! [`Machine`], carries out its outputs (send, filter, memberships, counters, the one log line
//! per conflict report, events) and keeps its timers. No decisions here.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::unix::AsyncFd;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{L2Event, Shared, error_chain};
use crate::Error;
use crate::counters::bump;
use crate::machine::{Input, Machine, Output, SendKind};
use crate::packet::MacAddr;
use crate::socket::{PacketSocket, TAG_ROOM};

/// Frames handled per readiness before the queued replies are sent and the task yields to
/// the other branches (owned-set updates, announcements, other interfaces).
const BATCH: usize = 256;

/// Carries out the machine's outputs on one interface.
struct Exec<'a> {
    shared: &'a Shared,
    sock: &'a PacketSocket,
    iface: &'a str,
}

impl Exec<'_> {
    fn run(&self, outputs: Vec<Output>) {
        for o in outputs {
            self.one(o);
        }
    }

    fn one(&self, o: Output) {
        let c = &self.shared.counters;
        match o {
            Output::Send { frame, kind } => match (self.sock.send(&frame), kind) {
                (Ok(_), SendKind::Reply(k)) => c.reply(k),
                (Ok(_), SendKind::Announcement(_)) => bump(&c.announcements_sent),
                (Err(e), kind) => {
                    bump(&c.send_errors);
                    debug!(?kind, error = %e, "frame not sent");
                }
            },
            Output::Drop(reason) => c.drop_reason(reason),
            Output::Conflict {
                ip,
                other_mac,
                report,
            } => {
                bump(&c.conflicts);
                match report {
                    // The one place a conflict is logged.
                    Some(suppressed) => {
                        warn!(%ip, %other_mac, suppressed, "another host claims an owned IP");
                        self.shared.emit(L2Event::Conflict {
                            ip,
                            iface: self.iface.to_string(),
                            other_mac,
                        });
                    }
                    None => bump(&c.conflicts_suppressed),
                }
            }
            Output::Membership { group, join } => {
                if let Err(e) = self.sock.membership(group, join) {
                    warn!(%group, join, error = %e, "multicast membership change failed");
                    if join {
                        self.shared.emit(L2Event::SocketError {
                            iface: self.iface.to_string(),
                            error: format!("failed to join multicast group {group}: {e}"),
                        });
                    }
                }
            }
            Output::BlockSources(macs) => {
                debug!(?macs, "sources dropped in the kernel filter");
                if let Err(e) = self.sock.block_sources(&macs) {
                    warn!(error = %e, "failed to update the socket filter");
                }
            }
            Output::OwnedChanged { gained, lost } => info!(?gained, ?lost, "owned IPs changed"),
        }
    }
}

fn open_async(iface: &str, ifindex: u32) -> Result<AsyncFd<PacketSocket>, Error> {
    PacketSocket::open_index(iface, ifindex)?
        .into_async()
        .map_err(|source| Error::Register {
            iface: iface.to_string(),
            source,
        })
}

pub(super) async fn iface_task(
    shared: Arc<Shared>,
    iface: String,
    ifindex: u32,
    mac: MacAddr,
    mut owned_rx: watch::Receiver<BTreeSet<IpAddr>>,
    reannounce: Arc<Notify>,
) {
    let sock = match open_async(&iface, ifindex) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot serve interface");
            shared.emit(L2Event::SocketError {
                iface: iface.clone(),
                error: error_chain(&e),
            });
            return;
        }
    };
    info!(%mac, "serving interface");
    let ex = Exec {
        shared: &shared,
        sock: sock.get_ref(),
        iface: &iface,
    };
    let mut m = Machine::new(mac, &shared.config.machine());
    let now = std::time::Instant::now;
    let first = owned_rx.borrow_and_update().clone();
    ex.run(m.handle(Input::SetOwned(first), now()));
    let mut buf = vec![0u8; 2048 + TAG_ROOM];
    loop {
        let next = m.next_timer().map(Instant::from_std);
        tokio::select! {
            biased;
            changed = owned_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let new = owned_rx.borrow_and_update().clone();
                ex.run(m.handle(Input::SetOwned(new), now()));
            }
            _ = reannounce.notified() => ex.run(m.handle(Input::Reannounce, now())),
            _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                ex.run(m.handle(Input::Timer, now()));
            }
            guard = sock.readable() => {
                let mut guard = match guard {
                    Ok(g) => g,
                    Err(e) => {
                        shared.emit(L2Event::SocketError { iface: iface.clone(), error: e.to_string() });
                        return;
                    }
                };
                if read_batch(sock.get_ref(), &mut m, &ex, &mut owned_rx, &mut buf) {
                    guard.clear_ready();
                }
                if let Ok(n) = sock.get_ref().kernel_drops()
                    && n > 0
                {
                    shared.counters.kernel_drops.fetch_add(u64::from(n), Ordering::Relaxed);
                }
            }
        }
    }
}

/// Feeds up to [`BATCH`] received frames to the machine, then flushes its queued replies.
/// True when the socket has nothing more to read (or failed: logged, readiness cleared).
fn read_batch(
    sock: &PacketSocket,
    m: &mut Machine,
    ex: &Exec<'_>,
    owned_rx: &mut watch::Receiver<BTreeSet<IpAddr>>,
    buf: &mut [u8],
) -> bool {
    let now = std::time::Instant::now;
    let mut drained = false;
    for _ in 0..BATCH {
        // A set_owned that landed while we were busy takes effect before the next frame: a
        // removed IP is never answered after set_owned returned.
        if owned_rx.has_changed().unwrap_or(false) {
            let new = owned_rx.borrow_and_update().clone();
            ex.run(m.handle(Input::SetOwned(new), now()));
        }
        match sock.try_recv(buf) {
            Ok(range) => {
                bump(&ex.shared.counters.frames_received);
                ex.run(m.handle(Input::Frame(&buf[range]), now()));
            }
            Err(e) => {
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.raw_os_error() != Some(libc::ENETDOWN)
                {
                    warn!(error = %e, "receive failed");
                }
                drained = true;
                break;
            }
        }
    }
    ex.run(m.handle(Input::Flush, now()));
    drained
}
