//! Process-wide counters that outlive any one actor. For now the data-integrity counter of the
//! apply path; the Prometheus endpoint (issue 5) will export these.

use std::sync::atomic::{AtomicU64, Ordering};

/// Committed entries that could not be decoded on apply (bad length or CRC). Must stay 0.
static DESERIALIZATION_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Counts one undecodable committed entry.
pub fn count_deserialization_failure() {
    DESERIALIZATION_FAILURES.fetch_add(1, Ordering::Relaxed);
}

/// `deserialization_failures_total`.
pub fn deserialization_failures_total() -> u64 {
    DESERIALIZATION_FAILURES.load(Ordering::Relaxed)
}

/// A hex + ASCII dump of the first `max` bytes, for error logs.
pub fn hex_dump(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes[..bytes.len().min(max)].chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk.iter().map(|b| if b.is_ascii_graphic() { *b as char } else { '.' }).collect();
        out.push_str(&format!("{:04x}  {:<48} {}\n", i * 16, hex.join(" "), ascii));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_shows_hex_and_ascii() {
        let d = hex_dump(b"AB\x00", 64);
        assert!(d.starts_with("0000  41 42 00"));
        assert!(d.trim_end().ends_with("AB."));
    }
}
