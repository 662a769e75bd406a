//! Kafka wire-protocol glue over the `kafka-protocol` crate: request framing, header decoding and
//! response encoding; responses as chains of buffers and file ranges (`chain`); and the record-batch compression codecs (`compression`). No I/O and no actors live here; `net::connection` feeds it bytes and the
//! `broker` handlers work on the decoded messages.

pub mod chain;
pub mod compression;
pub mod frame;

pub use frame::{decode_body, encode_response, peek_request, FramePeek};
