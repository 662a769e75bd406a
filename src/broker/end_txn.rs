//! EndTxn (key 26): commit or abort the producer's transaction. The coordinator moves it to
//! PrepareCommit/PrepareAbort in `__meta` and answers; the markers are then written to every
//! partition of the transaction (`txn::actor`). v5 (KIP-890) also answers the producer id and
//! epoch.

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId, RequestHeader};

use super::txn_common::{check_id, fenced_for, run};
use super::BrokerCtx;
use crate::security::acl::Operation;
use crate::txn::code;
use crate::txn::model::{EndTxn, TxnOp};

pub async fn handle(ctx: Arc<BrokerCtx>, h: RequestHeader, req: EndTxnRequest) -> Option<EndTxnResponse> {
    let v = h.request_api_version;
    let resp = EndTxnResponse::default();
    let id = req.transactional_id.0.as_str();
    if let Err(e) = check_id(&ctx, Operation::Write, id) {
        return Some(resp.with_error_code(e));
    }
    let op = TxnOp::End(EndTxn {
        transactional_id: id.to_string(),
        producer_id: req.producer_id.0,
        producer_epoch: i32::from(req.producer_epoch),
        commit: req.committed,
        from_client: true,
        fence: false,
    });
    let (error, pid, epoch) = match run(&ctx, op).await {
        Ok(r) => (fenced_for(r.error, v, 2), r.producer_id, r.producer_epoch),
        Err(e) => (e, -1, -1),
    };
    let resp = resp.with_error_code(error);
    Some(if v >= 5 {
        let ok = error == code::NONE;
        resp.with_producer_id(ProducerId(if ok { pid } else { -1 })).with_producer_epoch(if ok { epoch } else { -1 })
    } else {
        resp
    })
}
