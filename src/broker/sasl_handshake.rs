//! SaslHandshake (key 17) outside a SASL listener. On SASL listeners the connection answers it
//! itself (`net::sasl`); here, as Kafka on a PLAINTEXT or SSL listener, it is ILLEGAL_SASL_STATE
//! with the broker's enabled mechanisms empty (nothing can be negotiated on this listener).

use std::sync::Arc;

use kafka_protocol::messages::{RequestHeader, SaslHandshakeRequest, SaslHandshakeResponse};

use super::BrokerCtx;
use crate::error::code;

pub async fn handle(
    _ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    _req: SaslHandshakeRequest,
) -> Option<SaslHandshakeResponse> {
    Some(SaslHandshakeResponse::default().with_error_code(code::ILLEGAL_SASL_STATE))
}
