//! Request framing: the 4-byte size prefix is handled by the connection; this file looks at a
//! whole frame, tells apart unknown API keys and versions from decodable requests, decodes the
//! request header and body with `kafka-protocol`, and encodes a response with the header version
//! that belongs to the request's API and version.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use crate::error::ProtocolError;

/// The first fields of a request, read without decoding the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePeek {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Reads api key, version and correlation id from the start of a frame (after the size prefix).
pub fn peek_request(frame: &[u8]) -> Result<FramePeek, ProtocolError> {
    if frame.len() < 8 {
        return Err(ProtocolError::FrameTooShort(frame.len()));
    }
    let mut b = &frame[..8];
    Ok(FramePeek { api_key: b.get_i16(), api_version: b.get_i16(), correlation_id: b.get_i32() })
}

/// Decodes the request header of a frame whose key and version are known to be supported, and
/// returns it with the remaining body bytes.
pub fn decode_header(key: ApiKey, frame: Bytes) -> Result<(RequestHeader, Bytes), ProtocolError> {
    let version = peek_request(&frame)?.api_version;
    let mut buf = frame;
    let header_version = key.request_header_version(version);
    let header = RequestHeader::decode(&mut buf, header_version)
        .map_err(|e| ProtocolError::Decode { what: "request header", reason: e.to_string() })?;
    Ok((header, buf))
}

/// Decodes a request body of type `R` at `version`. Bytes after the fields of that version are
/// ignored, as Apache Kafka does: librdkafka 2.x sends Metadata v12 with extra trailing bytes.
pub fn decode_body<R: Decodable>(what: &'static str, mut body: Bytes, version: i16) -> Result<R, ProtocolError> {
    R::decode(&mut body, version).map_err(|e| ProtocolError::Decode { what, reason: e.to_string() })
}

/// Encodes a response frame body (without the size prefix): response header + body.
pub fn encode_response<R: Encodable + HeaderVersion>(
    what: &'static str,
    correlation_id: i32,
    version: i16,
    resp: &R,
) -> Result<BytesMut, ProtocolError> {
    let enc = |e: anyhow::Error| ProtocolError::Encode { what, reason: e.to_string() };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = R::header_version(version);
    let size = header.compute_size(header_version).map_err(enc)? + resp.compute_size(version).map_err(enc)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.extend_from_slice(&(size as i32).to_be_bytes());
    header.encode(&mut buf, header_version).map_err(enc)?;
    resp.encode(&mut buf, version).map_err(enc)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_reads_fixed_fields() {
        let frame = [0u8, 18, 0, 3, 0, 0, 0, 42, 0xff, 0xff];
        let p = peek_request(&frame).unwrap();
        assert_eq!(p, FramePeek { api_key: 18, api_version: 3, correlation_id: 42 });
    }

    #[test]
    fn peek_rejects_short_frames() {
        assert!(matches!(peek_request(&[0, 1, 2]), Err(ProtocolError::FrameTooShort(3))));
    }

    #[test]
    fn response_has_size_prefix_and_correlation_id() {
        let resp = kafka_protocol::messages::ApiVersionsResponse::default();
        let buf = encode_response("api versions", 7, 0, &resp).unwrap();
        let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        assert_eq!(size, buf.len() - 4);
        assert_eq!(i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]), 7);
    }
}

#[cfg(test)]
mod client_captures {
    use super::*;
    use kafka_protocol::messages::MetadataRequest;

    fn unhex(hex: &str) -> Bytes {
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect::<Vec<u8>>().into()
    }

    /// librdkafka 2.16's all-topics Metadata v12 request, captured on the wire: it carries three
    /// bytes after the v12 fields, which Kafka ignores.
    #[test]
    fn librdkafka_metadata_v12_with_trailing_bytes_decodes() {
        let frame = unhex("0003000c00000003000772646b61666b610000000000010000");
        let (h, body) = decode_header(ApiKey::Metadata, frame).unwrap();
        assert_eq!(h.correlation_id, 3);
        let r: MetadataRequest = decode_body("metadata", body, 12).unwrap();
        assert_eq!(r.topics, None);
    }
}
