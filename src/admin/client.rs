//! The admin API's client side, for `chronik-server cluster status|faults` and tests: small
//! blocking HTTP calls (ureq) to a node's `admin.listen`, and the text rendering of the cluster
//! status. No actors.

use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use super::status::FaultChange;

/// Why an admin call failed.
#[derive(Debug, Error)]
pub enum AdminError {
    #[error("cannot reach the admin API at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("the admin API at {addr} answered {status}: {body}")]
    Status { addr: String, status: u16, body: String },
    #[error("bad answer from the admin API at {addr}: {reason}")]
    Protocol { addr: String, reason: String },
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(timeout).build()
}

fn answer(addr: &str, result: Result<ureq::Response, ureq::Error>) -> Result<Value, AdminError> {
    match result {
        Ok(resp) => {
            let text = resp
                .into_string()
                .map_err(|e| AdminError::Protocol { addr: addr.to_string(), reason: e.to_string() })?;
            serde_json::from_str(&text)
                .map_err(|e| AdminError::Protocol { addr: addr.to_string(), reason: e.to_string() })
        }
        Err(ureq::Error::Status(status, resp)) => {
            let body = resp.into_string().unwrap_or_default();
            Err(AdminError::Status { addr: addr.to_string(), status, body })
        }
        Err(e) => Err(AdminError::Connect { addr: addr.to_string(), reason: e.to_string() }),
    }
}

/// `GET http://{addr}{path}` with `timeout`, as JSON (an error status is an error).
pub fn get_json(addr: &str, path: &str, timeout: Duration) -> Result<Value, AdminError> {
    answer(addr, agent(timeout).get(&format!("http://{addr}{path}")).call())
}

/// This node's own status (`GET /v1/node`).
pub fn fetch_status(addr: &str) -> Result<Value, AdminError> {
    get_json(addr, "/v1/node", Duration::from_secs(30))
}

/// The whole cluster's status as seen from the node at `addr` (`GET /v1/cluster`):
/// `{"brokers": [...], "nodes": [...], "groups": [...]}`; without `checksums`, the groups'
/// `checksum` fields are empty and no log is read.
pub fn cluster_status(addr: &str, checksums: bool) -> Result<Value, AdminError> {
    let path = if checksums { "/v1/cluster" } else { "/v1/cluster?checksums=false" };
    get_json(addr, path, Duration::from_secs(30))
}

/// Sends a fault change to one node (`POST /v1/faults`; it needs `faults.runtime = true`).
pub fn send_faults(addr: &str, change: &FaultChange) -> Result<(), AdminError> {
    let body = serde_json::to_string(change).unwrap_or_default();
    let resp = agent(Duration::from_secs(30))
        .post(&format!("http://{addr}/v1/faults"))
        .set("content-type", "application/json")
        .send_string(&body);
    answer(addr, resp).map(drop)
}

/// A membership change (`POST {path}` with `body`, `/v1/members...`) sent to the node at
/// `addr`; a node that does not lead `__meta` names the leader's admin address, which is asked
/// instead (once). The answer's JSON, or the refusal.
pub fn member_change(addr: &str, path: &str, body: Option<&Value>, timeout: Duration) -> Result<Value, AdminError> {
    let post = |a: &str| {
        let req = agent(timeout).post(&format!("http://{a}{path}")).set("content-type", "application/json");
        answer(a, req.send_string(&body.map(|b| b.to_string()).unwrap_or_default()))
    };
    match post(addr) {
        Err(AdminError::Status { status: 421, body, .. }) => {
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            match v["leader_admin"].as_str() {
                Some(leader) if leader != addr => post(leader),
                _ => Err(AdminError::Protocol {
                    addr: addr.to_string(),
                    reason: format!("no __meta leader with an admin API to ask: {body}"),
                }),
            }
        }
        other => other,
    }
}

/// Renders [`cluster_status`] as text tables.
pub fn render(status: &Value) -> String {
    let mut out = String::from("brokers:\n");
    for b in status["brokers"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  node {} at {}:{} admin {}\n",
            b["node"],
            b["host"].as_str().unwrap_or("?"),
            b["port"],
            b["admin"].as_str().unwrap_or("-")
        ));
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
