//! SaslHandshake and SaslAuthenticate on a SASL listener: decodes the request, drives the
//! connection's [`Authenticator`] and encodes Kafka's answer (UNSUPPORTED_SASL_MECHANISM with the
//! enabled list, SASL_AUTHENTICATION_FAILED with a generic message, `session_lifetime_ms` from
//! v1 when `connections.max.reauth.ms` is set). The connection writes the bytes and closes on
//! [`SaslReply::Close`].
//!
//! After a v0 SaslHandshake, Kafka expects the SASL tokens raw (KIP-152 added SaslAuthenticate
//! with handshake v1): each frame is a token, each answer a size-prefixed token (an empty one
//! when PLAIN succeeds), and a failure closes the connection without an answer, since there is
//! no header to carry an error ([`handle_raw`], Kafka's `SaslServerAuthenticator.handleSaslToken`
//! with `enableKafkaSaslAuthenticateHeaders` false).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::routes::{route_frame, Routed};
use crate::error::{code, ProtocolError};
use crate::meta::MetaState;
use crate::protocol::frame::{decode_body, encode_response};
use crate::security::principal::Principal;
use crate::security::sasl::{Authenticator, SaslSettings, Step};

/// What to do after a SASL request.
#[derive(Debug)]
pub enum SaslReply {
    /// Write the bytes, keep reading.
    Continue(BytesMut),
    /// Write the bytes; the connection is now `principal`.
    Authenticated { bytes: BytesMut, principal: Principal },
    /// Write the bytes (if any), then close; `reason` is for the log (no secrets).
    Close { bytes: Option<BytesMut>, reason: String },
}

/// SaslHandshake's API key.
pub const SASL_HANDSHAKE: i16 = ApiKey::SaslHandshake as i16;

/// Whether `key` is SaslHandshake (17) or SaslAuthenticate (36).
pub fn is_sasl_api(key: i16) -> bool {
    key == ApiKey::SaslHandshake as i16 || key == ApiKey::SaslAuthenticate as i16
}

/// Answers one SaslHandshake or SaslAuthenticate frame. `reauth`: the principal of an already
/// authenticated connection, which a re-authentication must keep.
pub fn handle(
    frame: Bytes,
    auth: &mut Authenticator,
    settings: &SaslSettings,
    store: &MetaState,
    reauth: Option<&Principal>,
) -> Result<SaslReply, ProtocolError> {
    let Routed::Request { route, header, body } = route_frame(frame)? else {
        return Err(ProtocolError::UnknownApiKey(-1));
    };
    let (version, correlation_id) = (header.request_api_version, header.correlation_id);
    if route.key == ApiKey::SaslHandshake {
        let req: SaslHandshakeRequest = decode_body("sasl handshake", body, version)?;
        let mechanisms: Vec<StrBytes> = settings.mechanisms.iter().map(|m| StrBytes::from_string(m.clone())).collect();
        let waiting = auth.awaiting_handshake();
        let ok = auth.handshake(req.mechanism.as_str(), settings).is_ok();
        let error = match (waiting, ok) {
            (_, true) => code::NONE,
            (false, _) => code::ILLEGAL_SASL_STATE,
            (true, false) => code::UNSUPPORTED_SASL_MECHANISM,
        };
        let resp = SaslHandshakeResponse::default().with_error_code(error).with_mechanisms(mechanisms);
        let bytes = encode_response("sasl handshake", correlation_id, version, &resp)?;
        return Ok(if ok {
            SaslReply::Continue(bytes)
        } else {
            let reason = format!("SaslHandshake refused mechanism {:?} (error {error})", req.mechanism.as_str());
            SaslReply::Close { bytes: Some(bytes), reason }
        });
    }
    let req: SaslAuthenticateRequest = decode_body("sasl authenticate", body, version)?;
    let fail = |message: String| -> Result<SaslReply, ProtocolError> {
        let resp = SaslAuthenticateResponse::default()
            .with_error_code(code::SASL_AUTHENTICATION_FAILED)
            .with_error_message(Some(StrBytes::from_string(message.clone())));
        let bytes = encode_response("sasl authenticate", correlation_id, version, &resp)?;
        Ok(SaslReply::Close { bytes: Some(bytes), reason: message })
    };
    match auth.authenticate(&req.auth_bytes, settings, store) {
        Step::Challenge(b) => {
            let resp = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(b));
            Ok(SaslReply::Continue(encode_response("sasl authenticate", correlation_id, version, &resp)?))
        }
        Step::Failed(message) => fail(message),
        Step::Done { principal, .. } if reauth.is_some_and(|p| *p != principal) => {
            fail("Cannot change principals during re-authentication".to_string())
        }
        Step::Done { principal, reply } => {
            let mut resp = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(reply));
            if version >= 1 {
                resp.session_lifetime_ms = settings.reauth_ms.min(i64::MAX as u64) as i64;
            }
            let bytes = encode_response("sasl authenticate", correlation_id, version, &resp)?;
            Ok(SaslReply::Authenticated { bytes, principal })
        }
    }
}

/// Answers one raw SASL token (the frames after a v0 SaslHandshake). `reauth` as for [`handle`].
pub fn handle_raw(
    token: &[u8],
    auth: &mut Authenticator,
    settings: &SaslSettings,
    store: &MetaState,
    reauth: Option<&Principal>,
) -> SaslReply {
    let framed = |b: Vec<u8>| {
        let mut out = BytesMut::with_capacity(4 + b.len());
        out.extend_from_slice(&(b.len() as i32).to_be_bytes());
        out.extend_from_slice(&b);
        out
    };
    match auth.authenticate(token, settings, store) {
        Step::Challenge(b) => SaslReply::Continue(framed(b)),
        Step::Failed(reason) => SaslReply::Close { bytes: None, reason },
        Step::Done { principal, .. } if reauth.is_some_and(|p| *p != principal) => {
            SaslReply::Close { bytes: None, reason: "Cannot change principals during re-authentication".to_string() }
        }
        Step::Done { principal, reply } => SaslReply::Authenticated { bytes: framed(reply), principal },
    }
}
