//! Small CRC-protected state files (`log-start`, a raft group's `raft-state` and `raft-commit`).
//! Layout: `magic (4 bytes) | body | crc32c u32 big-endian` where the CRC covers magic and body.
//! Files that must survive a crash are replaced atomically and durably (write `NAME.tmp`, fsync,
//! rename, fsync the directory); a damaged file is reported as `LogError::CorruptState`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{be_u32, sync_dir, IoContext, LogError, Result};

/// `magic | body | crc`.
pub fn encode(magic: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(body.len() + 8);
    b.extend_from_slice(magic);
    b.extend_from_slice(body);
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_be_bytes());
    b
}

/// Checks magic and CRC of `bytes` (read from `path`) and returns the body.
pub fn decode<'a>(path: &Path, magic: &[u8; 4], bytes: &'a [u8]) -> Result<&'a [u8]> {
    let bad = |reason: &str| LogError::CorruptState { path: path.to_path_buf(), reason: reason.to_string() };
    if bytes.len() < 8 || &bytes[..4] != magic {
        return Err(bad("too short or wrong magic"));
    }
    let end = bytes.len() - 4;
    if crc32c::crc32c(&bytes[..end]) != be_u32(bytes, end) {
        return Err(bad("crc mismatch"));
    }
    Ok(&bytes[4..end])
}

/// Reads and checks `path`; `Ok(None)` when it does not exist.
pub fn read(path: &Path, magic: &[u8; 4]) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => decode(path, magic, &b).map(|body| Some(body.to_vec())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io(path, e)),
    }
}

/// Replaces `path` with `magic | body | crc` atomically and durably.
pub fn store(path: &Path, magic: &[u8; 4], body: &[u8]) -> Result<()> {
    write_atomic(path, &encode(magic, body))
}

/// Writes `bytes` to `path` atomically and durably: write `path.tmp`, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp).ctx(&tmp)?;
        f.write_all(bytes).ctx(&tmp)?;
        if !super::syncs_deferred() {
            f.sync_all().ctx(&tmp)?;
        }
    }
    std::fs::rename(&tmp, path).ctx(path)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state");
        assert_eq!(read(&p, b"TEST").unwrap(), None);
        store(&p, b"TEST", b"one").unwrap();
        store(&p, b"TEST", b"two!").unwrap();
        assert_eq!(read(&p, b"TEST").unwrap().unwrap(), b"two!");
        assert!(!dir.path().join("state.tmp").exists());
        assert!(matches!(read(&p, b"XXXX"), Err(LogError::CorruptState { .. })));
    }

    #[test]
    fn damage_is_detected() {
        let p = Path::new("/x/state");
        let good = encode(b"TEST", b"payload");
        assert_eq!(decode(p, b"TEST", &good).unwrap(), b"payload");
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            assert!(decode(p, b"TEST", &bad).is_err(), "flip at {i}");
        }
        assert!(decode(p, b"TEST", &good[..good.len() - 1]).is_err());
        assert!(decode(p, b"TEST", b"TEST").is_err());
        let e = decode(p, b"TEST", b"").unwrap_err();
        assert!(e.to_string().contains("/x/state"));
    }
}
