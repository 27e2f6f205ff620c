//! Output: aligned tables for people, JSON or YAML for scripts.

use serde::Serialize;

use crate::CliError;
use crate::report::{StatusReport, WhyReport};

/// `-o` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

/// JSON or YAML of any report.
pub fn structured<T: Serialize>(value: &T, format: Output) -> Result<String, CliError> {
    let err = |f: &str, e: String| CliError::Output {
        format: f.into(),
        message: e,
    };
    match format {
        Output::Json => serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| err("json", e.to_string())),
        Output::Yaml | Output::Table => {
            serde_saphyr::to_string(value).map_err(|e| err("yaml", e.to_string()))
        }
    }
}

/// Columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn or_dash(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

/// The status report as tables.
pub fn status_table(r: &StatusReport) -> String {
    let mut out = String::from("POOLS\n");
    let rows: Vec<Vec<String>> = r
        .pools
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.auto_assign.to_string(),
                format!("{}/{}", p.usage.ipv4_used, p.usage.ipv4_free),
                format!("{}/{}", p.usage.ipv6_used, p.usage.ipv6_free),
            ]
        })
        .collect();
    out += &table(
        &["NAME", "AUTO-ASSIGN", "IPV4 USED/FREE", "IPV6 USED/FREE"],
        &rows,
    );
    out += "\nSERVICES\n";
    let rows: Vec<Vec<String>> = r
        .services
        .iter()
        .map(|s| {
            let ips: Vec<String> = s.ips.iter().map(ToString::to_string).collect();
            vec![
                format!("{}/{}", s.namespace, s.name),
                or_dash(&ips),
                s.state.clone(),
                or_dash(&s.l2_nodes),
                or_dash(&s.bgp_nodes),
            ]
        })
        .collect();
    out += &table(
        &["SERVICE", "IPS", "STATE", "L2 (ARP/NDP)", "BGP NODES"],
        &rows,
    );
    out += "\nBGP SESSIONS\n";
    let rows: Vec<Vec<String>> = r
        .sessions
        .iter()
        .map(|s| {
            vec![
                s.node.clone(),
                s.peer.clone(),
                s.address.clone(),
                s.state.clone(),
                s.prefixes_sent.to_string(),
                s.bfd.clone().unwrap_or_else(|| "-".into()),
                s.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    out += &table(
        &[
            "NODE",
            "PEER",
            "ADDRESS",
            "STATE",
            "PREFIXES",
            "BFD",
            "LAST ERROR",
        ],
        &rows,
    );
    out += "\nCONFIGURATION ERRORS\n";
    if r.config_errors.is_empty() {
        out += "none\n";
    } else {
        let rows: Vec<Vec<String>> = r
            .config_errors
            .iter()
            .map(|e| vec![e.source.clone(), e.object.clone(), e.message.clone()])
            .collect();
        out += &table(&["SOURCE", "OBJECT", "ERROR"], &rows);
    }
    out
}

/// The why report as text.
pub fn why_text(r: &WhyReport) -> String {
    let mut out = format!("Service {}\n", r.service);
    if !r.found {
        out += "  not found\n";
        return out;
    }
    let ips: Vec<String> = r.ips.iter().map(ToString::to_string).collect();
    out += &format!("  addresses: {}\n", or_dash(&ips));
    match &r.condition {
        Some(c) => {
            out += &format!("  condition: {} {}: {}\n", c.status, c.reason, c.message);
        }
        None => out += "  condition: none yet (the controller has not handled it)\n",
    }
    for p in &r.service_problems {
        out += &format!("  problem: {p}\n");
    }
    if !r.events.is_empty() {
        out += "\nEVENTS\n";
        let rows: Vec<Vec<String>> = r
            .events
            .iter()
            .map(|e| vec![e.type_.clone(), e.reason.clone(), e.message.clone()])
            .collect();
        out += &table(&["TYPE", "REASON", "MESSAGE"], &rows);
    }
    out += "\nPOOLS\n";
    let rows: Vec<Vec<String>> = r
        .pools
        .iter()
        .map(|p| {
            vec![
                p.pool.clone(),
                if p.usable { "yes".into() } else { "no".into() },
                or_dash(&p.reasons),
            ]
        })
        .collect();
    out += &table(&["POOL", "USABLE", "WHY NOT"], &rows);
    out
}
