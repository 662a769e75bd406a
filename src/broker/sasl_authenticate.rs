//! SaslAuthenticate (key 36) outside a SASL listener: ILLEGAL_SASL_STATE, as Kafka answers a
//! token that no handshake announced. On SASL listeners the connection answers it itself
//! (`net::sasl`).

use std::sync::Arc;

use kafka_protocol::messages::{RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse};

use super::{sb, BrokerCtx};
use crate::error::code;

pub async fn handle(
    _ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    _req: SaslAuthenticateRequest,
) -> Option<SaslAuthenticateResponse> {
    Some(
        SaslAuthenticateResponse::default()
            .with_error_code(code::ILLEGAL_SASL_STATE)
            .with_error_message(Some(sb("SaslAuthenticate is only served on SASL listeners after SaslHandshake"))),
    )
}
