//! The admin API's membership routes (`cluster add-node|remove-node|decommission`):
//! `POST /v1/members` (body `{"node": N, "raft_addr": "HOST:PORT", "kafka_addr": "HOST:PORT"}`),
//! `POST /v1/members/{id}/remove` and `POST /v1/members/{id}/decommission`. The `__meta`
//! leader decides (`MetaMsg::Members`); another node answers 421 with the leader's admin address
//! (`leader_admin`), which the client follows. A refusal is 409 and changes nothing. A
//! decommission first reassigns every replica of the node, waits (at most `timeout_ms` of the
//! query, default 300 s) until no partition lists the node, then removes it. Both removals answer
//! once `__meta`'s configuration no longer names the node (its voter seat went to a learner).

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use tokio::sync::oneshot;

use super::status::AdminState;
use crate::meta::actor::{MemberAnswer, MemberOp};
use crate::meta::members::Member;
use crate::meta::MetaMsg;
use crate::security::acl::Operation;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/members", web::post().to(add))
        .route("/v1/members/{id}/remove", web::post().to(remove))
        .route("/v1/members/{id}/decommission", web::post().to(decommission));
}

#[derive(serde::Deserialize)]
struct AddBody {
    node: u64,
    raft_addr: String,
    #[serde(default)]
    kafka_addr: String,
}

#[derive(serde::Deserialize)]
struct Wait {
    timeout_ms: Option<u64>,
}

async fn ask(state: &AdminState, op: MemberOp) -> MemberAnswer {
    let (tx, rx) = oneshot::channel();
    state.meta.do_send(MetaMsg::Members { op, reply: tx });
    match tokio::time::timeout(Duration::from_secs(30), rx).await {
        Ok(Ok(a)) => a,
        _ => MemberAnswer::Failed("__meta did not answer in time".into()),
    }
}

/// Waits until `__meta`'s configuration on this node no longer names `id` (a voter's seat is
/// handed to a learner by the `__meta` leader's planner, one step per tick, after `RemoveNode`
/// applied): only then can the node be stopped without costing `__meta` a voter it still counts.
async fn wait_left_meta(state: &AdminState, id: u64, deadline: Instant) -> Result<(), String> {
    loop {
        let (tx, rx) = oneshot::channel();
        state.meta.do_send(MetaMsg::Status { reply: tx });
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(5), rx).await {
            if !s.voters.contains(&id) && !s.learners.contains(&id) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "node {id} was removed, but __meta still counts it (voters {:?}, learners {:?}); do not stop it yet, run the command again to wait",
                    s.voters, s.learners
                ));
            }
        } else if Instant::now() >= deadline {
            return Err(format!("node {id} was removed, but __meta's configuration could not be read"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The HTTP answer of a [`MemberAnswer`].
fn respond(state: &AdminState, answer: MemberAnswer, what: &str) -> HttpResponse {
    match answer {
        MemberAnswer::Done { moved } => {
            HttpResponse::Ok().json(json!({ "ok": true, "done": what, "reassigned": moved }))
        }
        MemberAnswer::NotLeader(leader) => {
            let admin = state.image.borrow().brokers.get(&leader).and_then(|b| b.admin.clone());
            HttpResponse::build(StatusCode::MISDIRECTED_REQUEST).json(json!({
                "error": format!("node {} does not lead __meta (leader: {leader}); ask the leader", state.node_id),
                "leader": leader, "leader_admin": admin,
            }))
        }
        MemberAnswer::Refused(e) => {
            super::routes::error(StatusCode::CONFLICT, format!("refused, nothing changed: {e}"))
        }
        MemberAnswer::Failed(e) => super::routes::error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn add(state: web::Data<AdminState>, body: web::Bytes, req: HttpRequest) -> HttpResponse {
    if let Some(refused) = super::routes::refused(&state, &req, Operation::Alter) {
        return refused;
    }
    let b: AddBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return super::routes::error(StatusCode::BAD_REQUEST, format!("bad member: {e}")),
    };
    let op = MemberOp::Add(Member { node_id: b.node, raft_addr: b.raft_addr, kafka_addr: b.kafka_addr });
    let answer = ask(&state, op).await;
    respond(&state, answer, "add-node")
}

async fn remove(state: web::Data<AdminState>, path: web::Path<u64>, req: HttpRequest) -> HttpResponse {
    if let Some(refused) = super::routes::refused(&state, &req, Operation::Alter) {
        return refused;
    }
    let id = path.into_inner();
    let answer = ask(&state, MemberOp::Remove(id)).await;
    if matches!(answer, MemberAnswer::Done { .. }) {
        // A dead voter's seat goes to a learner: answered once `__meta` no longer counts it.
        if let Err(e) = wait_left_meta(&state, id, Instant::now() + Duration::from_secs(60)).await {
            return super::routes::error(StatusCode::GATEWAY_TIMEOUT, e);
        }
    }
    respond(&state, answer, "remove-node")
}

async fn decommission(
    state: web::Data<AdminState>,
    path: web::Path<u64>,
    query: web::Query<Wait>,
    req: HttpRequest,
) -> HttpResponse {
    if let Some(refused) = super::routes::refused(&state, &req, Operation::Alter) {
        return refused;
    }
    let id = path.into_inner();
    let timeout = Duration::from_millis(query.timeout_ms.unwrap_or(300_000));
    let moved = match ask(&state, MemberOp::Evacuate(id)).await {
        MemberAnswer::Done { moved } => moved,
        other => return respond(&state, other, "decommission"),
    };
    slog::info!(state.logger, "decommission: waiting for the reassignments"; "node" => id, "partitions" => moved);
    let deadline = Instant::now() + timeout;
    let mut image = state.image.clone();
    loop {
        let left = {
            let s = image.borrow_and_update();
            s.topics.values().flat_map(|t| &t.partitions).filter(|p| p.replicas.contains(&id)).count()
        };
        if left == 0 {
            break;
        }
        if Instant::now() >= deadline {
            return super::routes::error(
                StatusCode::GATEWAY_TIMEOUT,
                format!("decommission of node {id}: {left} partition(s) still on it after {timeout:?}; the reassignments go on (ListPartitionReassignments), run decommission again to finish"),
            );
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), image.changed()).await;
    }
    // The leader may have changed while the replicas moved (the node itself may have led).
    let answer = ask(&state, MemberOp::Remove(id)).await;
    match answer {
        MemberAnswer::Done { .. } => match wait_left_meta(&state, id, deadline).await {
            Ok(()) => HttpResponse::Ok().json(json!({ "ok": true, "done": "decommission", "reassigned": moved })),
            Err(e) => super::routes::error(StatusCode::GATEWAY_TIMEOUT, e),
        },
        other => respond(&state, other, "decommission"),
    }
}
