//! A standalone BFD speaker for tests and benchmarks: one session, events on stdout.
//!
//! ```text
//! bfd_peer --local 192.0.2.2 --peer 192.0.2.1 [--ifname eth0] [--rx 300] [--tx 300] [--mult 3] [--passive]
//!          [--multihop] [--min-ttl 254] [--echo 50]
//!          [--auth meticulous-keyed-sha1|keyed-sha1 --key-id 1 --key SECRET]
//! ```
//!
//! Prints `ready` once the session is added, then one line per state change
//! (`event peer=192.0.2.1 old=Down new=Up diag=None`). With `--echo MS` (echo mode, echo
//! interval MS) it also prints the echo function's state every 200 ms (`echo active=true
//! tx_ms=50 adv_us=50000 loop_ok=true remote_us=50000 sent=N returned=N out=N in=N drops=N
//! send_errors=N`). With `--auth` it prints the session's authentication drops every 200 ms
//! (`auth state=Down failures=N auth_bad_hash=N ... last=wrong key id 3 (expected 1)`). SIGTERM / SIGINT: AdminDown, then exit.
//! Tests run it in a namespace and freeze it with SIGSTOP to play a hung node.

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use ferrolb_bfd::{AuthKey, AuthMethod, BfdAuth, BfdEvent, BfdManager, BfdProfile, ManagerConfig};

struct Args {
    local: IpAddr,
    peer: IpAddr,
    ifname: Option<String>,
    multihop: bool,
    profile: BfdProfile,
}

fn parse() -> anyhow::Result<Args> {
    let mut local = None;
    let mut peer = None;
    let mut ifname = None;
    let mut multihop = false;
    let mut profile = BfdProfile::default();
    let (mut method, mut key_id, mut key) = (None, 1u8, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--passive" {
            profile.passive_mode = true;
            continue;
        }
        if flag == "--multihop" {
            multihop = true;
            continue;
        }
        let val = it.next().with_context(|| format!("{flag} needs a value"))?;
        let ms = |v: &str| -> anyhow::Result<Duration> {
            Ok(Duration::from_millis(
                v.parse().with_context(|| format!("{flag} {v}"))?,
            ))
        };
        match flag.as_str() {
            "--local" => local = Some(val.parse().context("--local")?),
            "--peer" => peer = Some(val.parse().context("--peer")?),
            "--ifname" => ifname = Some(val),
            "--rx" => profile.receive_interval = ms(&val)?,
            "--tx" => profile.transmit_interval = ms(&val)?,
            "--mult" => profile.detect_multiplier = val.parse().context("--mult")?,
            "--min-ttl" => profile.minimum_ttl = val.parse().context("--min-ttl")?,
            "--echo" => {
                profile.echo_mode = true;
                profile.echo_interval = ms(&val)?;
            }
            "--auth" => {
                method = Some(match val.as_str() {
                    "meticulous-keyed-sha1" => AuthMethod::MeticulousKeyedSha1,
                    "keyed-sha1" => AuthMethod::KeyedSha1,
                    other => bail!("--auth {other}: meticulous-keyed-sha1 or keyed-sha1"),
                })
            }
            "--key-id" => key_id = val.parse().context("--key-id")?,
            "--key" => key = Some(AuthKey::new(val.as_bytes())?),
            other => bail!("unknown argument {other}"),
        }
    }
    if let Some(method) = method {
        profile.auth = Some(BfdAuth {
            method,
            key_id,
            key: key.context("--auth needs --key")?,
        });
    }
    Ok(Args {
        local: local.context("--local is required")?,
        peer: peer.context("--peer is required")?,
        ifname,
        multihop,
        profile,
    })
}

fn print_event(out: &mut impl Write, ev: &BfdEvent) -> std::io::Result<()> {
    writeln!(
        out,
        "event peer={} old={} new={} diag={:?} remote={} failure={}",
        ev.peer,
        ev.old,
        ev.new,
        ev.diag,
        ev.remote_state,
        ev.is_failure()
    )?;
    out.flush()
}

async fn print_echo(out: &mut impl Write, mgr: &BfdManager, peer: IpAddr) -> anyhow::Result<()> {
    let Some(s) = mgr.session(peer).await? else {
        return Ok(());
    };
    let (e, c) = (&s.info.echo, mgr.counters());
    writeln!(
        out,
        "echo state={} active={} tx_ms={} adv_us={} loop_ok={} remote_us={} sent={} returned={} peer_loops={} not_returned={} out={} in={} drops={} send_errors={}",
        s.info.state,
        e.tx_interval.is_some(),
        e.tx_interval.map_or(0, |d| d.as_millis()),
        e.advertised_rx.as_micros(),
        e.loop_ok,
        e.remote_min_rx.as_micros(),
        e.sent,
        e.returned,
        e.peer_loops
            .map_or("unknown", |l| if l { "yes" } else { "no" }),
        e.not_returned,
        c.echo_out,
        c.echo_in,
        c.echo_drops,
        c.echo_send_errors
    )?;
    out.flush()?;
    Ok(())
}

async fn print_auth(out: &mut impl Write, mgr: &BfdManager, peer: IpAddr) -> anyhow::Result<()> {
    let Some(s) = mgr.session(peer).await? else {
        return Ok(());
    };
    let auth: Vec<_> = s.drops.iter().filter(|(r, _)| r.is_auth()).collect();
    let mut line = format!(
        "auth state={} failures={}",
        s.info.state,
        auth.iter().map(|(_, n)| **n).sum::<u64>()
    );
    for (r, n) in auth {
        line.push_str(&format!(" {r}={n}"));
    }
    if let Some(f) = &s.last_auth_failure {
        line.push_str(&format!(" last={f}"));
    }
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse()?;
    let mgr = BfdManager::start(ManagerConfig {
        ipv4: args.peer.is_ipv4(),
        ipv6: args.peer.is_ipv6(),
        ..ManagerConfig::default()
    })
    .await?;
    let mut events = mgr.subscribe();
    let echo = args.profile.echo_mode;
    let auth = args.profile.auth.is_some();
    if args.multihop {
        mgr.add_multihop_session(args.peer, args.local, args.profile)
            .await?;
    } else {
        mgr.add_session(args.peer, args.local, args.ifname, args.profile)
            .await?;
    }
    let mut out = std::io::stdout();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tick.tick(), if echo || auth => {
                if echo {
                    print_echo(&mut out, &mgr, args.peer).await?;
                }
                if auth {
                    print_auth(&mut out, &mgr, args.peer).await?;
                }
            }
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                print_event(&mut out, &ev)?;
                out.flush()?;
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    mgr.shutdown().await?;
    // The AdminDown transitions made by shutdown.
    while let Ok(ev) = events.try_recv() {
        print_event(&mut out, &ev)?;
    }
    let c = mgr.counters();
    writeln!(
        out,
        "counters in={} out={} send_errors={} state_changes={} drops={}",
        c.packets_in,
        c.packets_out,
        c.send_errors,
        c.state_changes,
        c.drops.values().sum::<u64>()
    )?;
    // Then the reasons that counted, one `drop reason=N` line each.
    for (reason, n) in c.drops.iter().filter(|(_, n)| **n > 0) {
        writeln!(out, "drop {reason}={n}")?;
    }
    Ok(())
}
