//! The admin API's routes: what each HTTP request reads or changes, and the status code and
//! JSON it answers with. Read-only routes are GET, changes are POST; every error is a JSON
//! `{"error": ...}`. Handlers run on the admin server's worker thread and ask the actors by
//! message (see [`super::status`]).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::status::{self, AdminState, FaultChange, NodeAnswer};
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};
use crate::security::principal::{Principal, Session};

/// How long `/v1/cluster` waits for another node's `/v1/node`.
pub const FAN_OUT_TIMEOUT: Duration = Duration::from_secs(2);

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics))
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/v1/node", web::get().to(node))
        .route("/v1/cluster", web::get().to(cluster))
        .route("/v1/partitions/{topic}/{partition}", web::get().to(partition))
        .route("/v1/faults", web::post().to(faults))
        .configure(super::members::configure);
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message.into() }))
}

/// The admin API authenticates nobody: when the authorizer is on, a request is authorized as
/// `User:ANONYMOUS` at the client's IP address (grant e.g. `--allow-principal User:ANONYMOUS
/// --allow-host 127.0.0.1 --operation Describe --cluster`), and a refusal answers 403.
/// `Some(403 answer)` when refused.
pub(super) fn refused(state: &AdminState, req: &HttpRequest, op: Operation) -> Option<HttpResponse> {
    if !state.authorizer.enabled() {
        return None;
    }
    let host = req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let session = Session { principal: Principal::anonymous(), listener: "ADMIN".to_string(), host };
    let acls = state.image.borrow().acls.clone();
    match state.authorizer.authorize(&acls, &session, op, ResourceType::Cluster, CLUSTER_NAME) {
        true => None,
        false => Some(error(
            StatusCode::FORBIDDEN,
            format!("CLUSTER_AUTHORIZATION_FAILED: {} on the cluster is not allowed from {}", op.name(), session.host),
        )),
    }
}

/// Any path or method no route serves.
pub async fn not_found() -> HttpResponse {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint; see GET /metrics, /health/live, /health/ready, /v1/node, /v1/cluster, \
         /v1/partitions/{topic}/{partition}, POST /v1/faults, /v1/members, /v1/members/{id}/remove, \
         /v1/members/{id}/decommission",
    )
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::registry().render())
}

async fn live(state: web::Data<AdminState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live", "node": state.node_id }))
}

async fn ready(state: web::Data<AdminState>) -> HttpResponse {
    let reasons = status::readiness(&state).await;
    if reasons.is_empty() {
        HttpResponse::Ok().json(json!({ "status": "ready", "node": state.node_id }))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "status": "not ready", "node": state.node_id, "reasons": reasons,
        }))
    }
}

/// `?checksums=false` leaves out each partition's log CRC, which reads every log (progress polls).
fn checksums_wanted(req: &HttpRequest) -> bool {
    !req.query_string().split('&').any(|kv| kv == "checksums=false")
}

async fn node(state: web::Data<AdminState>, req: HttpRequest) -> HttpResponse {
    if let Some(refused) = refused(&state, &req, Operation::Describe) {
        return refused;
    }
    HttpResponse::Ok().json(status::node_status(&state, checksums_wanted(&req)).await)
}

async fn cluster(state: web::Data<AdminState>, req: HttpRequest) -> HttpResponse {
    if let Some(refused) = refused(&state, &req, Operation::Describe) {
        return refused;
    }
    let brokers = status::brokers(&state.image.borrow().clone());
    let checksums = checksums_wanted(&req);
    let path = if checksums { "/v1/node" } else { "/v1/node?checksums=false" };
    let mine = status::node_status(&state, checksums).await;
    let mut asks = Vec::new();
    for b in brokers.iter().filter(|b| b.node != state.node_id) {
        let node = b.node;
        match b.admin.clone() {
            None => asks.push(futures::future::Either::Left(futures::future::ready(NodeAnswer::Unreachable {
                node,
                error: "registered no admin address".to_string(),
            }))),
            Some(addr) => asks.push(futures::future::Either::Right(async move {
                let got = web::block(move || super::client::get_json(&addr, path, FAN_OUT_TIMEOUT)).await;
                match got {
                    Ok(Ok(v)) => NodeAnswer::Status(v),
                    Ok(Err(e)) => NodeAnswer::Unreachable { node, error: e.to_string() },
                    Err(e) => NodeAnswer::Unreachable { node, error: e.to_string() },
                }
            })),
        }
    }
    let mut answers = vec![NodeAnswer::Status(serde_json::to_value(&mine).unwrap_or_default())];
    answers.extend(futures::future::join_all(asks).await);
    answers.sort_by_key(|a| match a {
        NodeAnswer::Status(v) => v["node"].as_u64().unwrap_or(0),
        NodeAnswer::Unreachable { node, .. } => *node,
    });
    HttpResponse::Ok().json(status::merge(&brokers, answers))
}

async fn partition(state: web::Data<AdminState>, path: web::Path<(String, String)>, req: HttpRequest) -> HttpResponse {
    if let Some(refused) = refused(&state, &req, Operation::Describe) {
        return refused;
    }
    let (topic, partition) = path.into_inner();
    let Ok(index) = partition.parse::<i32>() else {
        return error(StatusCode::BAD_REQUEST, format!("partition {partition:?} is not a number"));
    };
    match status::partition_status(&state, &topic, index).await {
        Some(entry) => HttpResponse::Ok().json(entry),
        None => {
            error(StatusCode::NOT_FOUND, format!("partition {topic}/{index} is not hosted on node {}", state.node_id))
        }
    }
}

async fn faults(state: web::Data<AdminState>, body: web::Bytes, req: HttpRequest) -> HttpResponse {
    if let Some(refused) = refused(&state, &req, Operation::Alter) {
        return refused;
    }
    if !state.runtime_faults {
        return error(
            StatusCode::FORBIDDEN,
            format!("faults.runtime is off on node {}: fault injection is refused (start the node with faults.runtime = true)", state.node_id),
        );
    }
    match serde_json::from_slice::<FaultChange>(&body) {
        Ok(change) => {
            status::apply_faults(&state, &change);
            HttpResponse::Ok().json(json!({ "ok": true, "change": change }))
        }
        Err(e) => error(StatusCode::BAD_REQUEST, format!("bad fault change: {e}")),
    }
}
