//! The README demo (`sudo bash examples/lab/run.sh`, which runs `lab demo`): in the lab
//! with the manifests of `examples/lab/manifests`, four scenarios: a Service IP answering
//! on the segment through ARP, the same through BGP with three equal-cost next hops and
//! flows spread over them, an L2 failover, and a withdraw when the Services are deleted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Lab, NODE_NAMES};
use crate::netns::wait_until;

pub fn say(msg: &str) {
    println!("\n\x1b[1m== {msg}\x1b[0m");
}

pub fn info(msg: &str) {
    println!("   {msg}");
}

/// Runs the four scenarios in a lab whose controller and speakers run; the first that
/// fails is the error.
pub fn run(lab: &mut Lab) -> Result<(), String> {
    let ips = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let (l2, bgp) = (lab.assigned_ips("web-l2"), lab.assigned_ips("web-bgp"));
        Some((l2.first()?.clone(), bgp.first()?.clone()))
    });
    let (l2, bgp) = ips.ok_or("controller did not assign IPs (see controller.log)")?;
    info(&format!(
        "controller assigned web-l2 -> {l2}, web-bgp -> {bgp}"
    ));
    lab.accept_on_nodes(&l2);
    lab.accept_on_nodes(&bgp);
    let owner = l2_answers(lab, &l2)?;
    bgp_ecmp(lab, &bgp)?;
    failover(lab, &l2, &owner)?;
    withdraw(lab, &l2, &bgp)?;
    say("All four scenarios passed.");
    Ok(())
}

fn mac(ns: &crate::netns::Netns, dev_or_ip: &str, neigh: bool) -> String {
    let out = if neigh {
        ns.ip(&["neigh", "show", dev_or_ip])
    } else {
        ns.ip(&["link", "show", dev_or_ip])
    };
    let out = out.unwrap_or_default();
    let mut words = out.split_whitespace();
    let key = if neigh { "lladdr" } else { "link/ether" };
    words.find(|w| *w == key);
    words.next().unwrap_or("?").to_string()
}

fn l2_answers(lab: &Lab, ip: &str) -> Result<String, String> {
    say(&format!(
        "1. L2: {ip} answers the client on the segment from its owner node"
    ));
    let owner = wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
        Lab::curl(&lab.cl2, ip, None, "1")
    })
    .ok_or_else(|| format!("no answer from {ip} (see the n*.log files)"))?;
    info(&format!(
        "curl http://{ip}:8080/ from client-l2 -> \"{owner}\""
    ));
    let i = node_index(&owner)?;
    info(&format!(
        "client-l2's neighbour table: {ip} lladdr {} (node {owner}'s eth0 is {})",
        mac(&lab.cl2, ip, true),
        mac(&lab.nodes[i], "eth0", false)
    ));
    Ok(owner)
}

fn node_index(name: &str) -> Result<usize, String> {
    NODE_NAMES
        .iter()
        .position(|n| *n == name)
        .ok_or_else(|| format!("unexpected answer {name:?}"))
}

fn bgp_ecmp(lab: &mut Lab, ip: &str) -> Result<(), String> {
    say(&format!(
        "2. BGP: {ip} with three equal-cost next hops on the router"
    ));
    let three = lab.wait_paths(ip, 3, Duration::from_secs(10));
    let route = lab.r.ip(&["route", "show", ip]).unwrap_or_default();
    for l in route.lines() {
        info(l);
    }
    if !three {
        let got = lab.router_paths(ip);
        return Err(format!(
            "expected 3 next hops for {ip}, got {got}\n{}",
            lab.diag()
        ));
    }
    let mut hits: BTreeMap<String, u32> = NODE_NAMES.iter().map(|n| (n.to_string(), 0)).collect();
    for port in 40001..=40030 {
        if let Some(who) = Lab::curl(&lab.cout, ip, Some(port), "2") {
            *hits.entry(who).or_default() += 1;
        }
    }
    let counts: Vec<String> = hits.iter().map(|(n, c)| format!("{n}={c}")).collect();
    info(&format!(
        "30 requests from client-out (behind the router): {}",
        counts.join(" ")
    ));
    if NODE_NAMES.iter().any(|n| hits[*n] == 0) {
        return Err("traffic did not reach all three nodes".into());
    }
    Ok(())
}

fn failover(lab: &mut Lab, ip: &str, owner: &str) -> Result<(), String> {
    say(&format!(
        "3. L2 failover: node {owner} dies (speaker kill -9 and its link down)"
    ));
    let i = node_index(owner)?;
    let t0 = Instant::now();
    lab.speakers[owner].signal("KILL");
    lab.nodes[i].ip(&["link", "set", "eth0", "down"])?;
    let new = wait_until(Duration::from_secs(20), Duration::from_millis(1), || {
        Lab::curl(&lab.cl2, ip, None, "0.2").filter(|n| n != owner)
    })
    .ok_or_else(|| format!("no other node took over {ip}"))?;
    info(&format!(
        "{ip} now answered by {new}, {} ms after the kill (curl polling, ~200 ms resolution)",
        t0.elapsed().as_millis()
    ));
    lab.nodes[i].ip(&["link", "set", "eth0", "up"])?;
    if let Some(mut p) = lab.speakers.remove(owner) {
        p.stop();
    }
    lab.start_speaker(i);
    Ok(())
}

fn withdraw(lab: &mut Lab, l2: &str, bgp: &str) -> Result<(), String> {
    say("4. Deleting both Services: the route leaves the router and ARP goes unanswered");
    lab.remove("services.yaml");
    if !lab.wait_paths(bgp, 0, Duration::from_secs(10)) {
        return Err(format!(
            "route to {bgp} still on the router\n{}",
            lab.diag()
        ));
    }
    info(&format!("ip route show {bgp} on the router: (nothing)"));
    lab.cl2.ip(&["neigh", "flush", "all"])?;
    let arping = ["-c", "2", "-w", "2", "-I", "eth0", l2];
    if lab.cl2.exec_output("arping", &arping).status.success() {
        return Err(format!("{l2} still answers ARP"));
    }
    info(&format!("arping {l2} from client-l2: no reply"));
    Ok(())
}
