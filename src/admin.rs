//! `chronik-server cluster status`: asks every broker of a cluster for its status (the private
//! status request, see `broker::status`) and prints the brokers and, per group, each node's
//! role, leader, term, commit and applied index, high watermark, checksum and the leader's view
//! of each replica's match index. Plain blocking I/O; no actors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use crate::broker::status::STATUS_API_KEY;

/// Why the status could not be gathered.
#[derive(Debug, Error)]
pub enum AdminError {
    #[error("cannot reach {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("bad answer from {addr}: {reason}")]
    Protocol { addr: String, reason: String },
}

/// Sends the status request to one node and returns its JSON.
pub fn fetch_status(addr: &str) -> Result<Value, AdminError> {
    let io = |source| AdminError::Connect { addr: addr.to_string(), source };
    let mut s = TcpStream::connect(addr).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(io)?;
    // size, api key, version 0, correlation id 1, null client id
    let mut req = 10i32.to_be_bytes().to_vec();
    req.extend_from_slice(&STATUS_API_KEY.to_be_bytes());
    req.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    s.write_all(&req).map_err(io)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).map_err(io)?;
    let mut body = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    s.read_exact(&mut body).map_err(io)?;
    if body.len() < 8 {
        return Err(AdminError::Protocol { addr: addr.to_string(), reason: "short response".into() });
    }
    serde_json::from_slice(&body[8..])
        .map_err(|e| AdminError::Protocol { addr: addr.to_string(), reason: e.to_string() })
}

/// Sends a fault change to one node (it must run with `faults.runtime = true`).
pub fn send_faults(addr: &str, change: &crate::broker::status::FaultChange) -> Result<(), AdminError> {
    let io = |source| AdminError::Connect { addr: addr.to_string(), source };
    let mut s = TcpStream::connect(addr).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(io)?;
    let body = serde_json::to_vec(change).unwrap_or_default();
    let mut req = ((10 + body.len()) as i32).to_be_bytes().to_vec();
    req.extend_from_slice(&crate::broker::status::FAULTS_API_KEY.to_be_bytes());
    req.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    req.extend_from_slice(&body);
    s.write_all(&req).map_err(io)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).map_err(io)?;
    let mut resp = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    s.read_exact(&mut resp).map_err(io)?;
    let v: Value = serde_json::from_slice(resp.get(8..).unwrap_or_default())
        .map_err(|e| AdminError::Protocol { addr: addr.to_string(), reason: e.to_string() })?;
    if v["ok"] == true {
        Ok(())
    } else {
        Err(AdminError::Protocol { addr: addr.to_string(), reason: v["error"].to_string() })
    }
}

/// Gathers the status of every broker known to `bootstrap`: `{"brokers": [...], "nodes": [...],
/// "groups": [...]}` where `groups` holds every node's partition groups and `__meta` (topic
/// `__meta`).
pub fn cluster_status(bootstrap: &str) -> Result<Value, AdminError> {
    let first = fetch_status(bootstrap)?;
    let brokers = first["brokers"].as_array().cloned().unwrap_or_default();
    let mut nodes = Vec::new();
    let mut groups = Vec::new();
    for b in &brokers {
        let addr = format!("{}:{}", b["host"].as_str().unwrap_or("127.0.0.1"), b["port"]);
        let status = match fetch_status(&addr) {
            Ok(s) => s,
            Err(e) => {
                nodes.push(serde_json::json!({"node": b["node"], "error": e.to_string()}));
                continue;
            }
        };
        nodes.push(serde_json::json!({
            "node": status["node"],
            "deserialization_failures_total": status["deserialization_failures_total"],
        }));
        if let Some(mut meta) = status.get("meta").cloned().filter(|m| !m.is_null()) {
            meta["node"] = status["node"].clone();
            meta["topic"] = "__meta".into();
            meta["partition"] = 0.into();
            groups.push(meta);
        }
        groups.extend(status["groups"].as_array().cloned().unwrap_or_default());
    }
    Ok(serde_json::json!({ "brokers": brokers, "nodes": nodes, "groups": groups }))
}

/// Renders [`cluster_status`] as text tables.
pub fn render(status: &Value) -> String {
    let mut out = String::from("brokers:\n");
    for b in status["brokers"].as_array().into_iter().flatten() {
        out.push_str(&format!("  node {} at {}:{}\n", b["node"], b["host"].as_str().unwrap_or("?"), b["port"]));
    }
    out.push_str("nodes:\n");
    for n in status["nodes"].as_array().into_iter().flatten() {
        match n.get("error") {
            Some(e) => out.push_str(&format!("  node {}: unreachable: {e}\n", n["node"])),
            None => out.push_str(&format!(
                "  node {}: deserialization_failures_total {}\n",
                n["node"], n["deserialization_failures_total"]
            )),
        }
    }
    out.push_str(&format!(
        "{:<24} {:>5} {:>5} {:>9} {:>6} {:>5} {:>8} {:>8} {:>10} {:>10}  match\n",
        "group", "node", "grp", "role", "leader", "term", "commit", "applied", "hw", "checksum"
    ));
    let s = |v: &Value| match v {
        Value::String(x) => x.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    for g in status["groups"].as_array().into_iter().flatten() {
        let name = format!("{}/{}", s(&g["topic"]), s(&g["partition"]));
        out.push_str(&format!(
            "{:<24} {:>5} {:>5} {:>9} {:>6} {:>5} {:>8} {:>8} {:>10} {:>10}  {}\n",
            name,
            s(&g["node"]),
            s(&g["group"]),
            s(&g["role"]),
            s(&g["leader"]),
            s(&g["term"]),
            s(&g["commit"]),
            s(&g["applied"]),
            s(&g["high_watermark"]),
            s(&g["checksum"]),
            s(&g["match"]),
        ));
    }
    out
}
