//! A response to send as a chain of parts: buffers in memory and ranges of open files. A Fetch
//! response is its encoded fields with each partition's records spliced in
//! (`broker::fetch_reply`): the records are never copied into the response buffer, and on a
//! plaintext listener the written batches go from the page cache to the socket with `sendfile`
//! (`net::connection`'s `Sink`), so their bytes never enter the process.
//!
//! A file part holds its descriptor open ([`HeldFile`]): a segment deleted or replaced after the
//! part was made is still sent as it was, and the fd budget (`log::file_cache`) cannot close it
//! under the send. What the file's holder must give back once the chain is sent (the budget's
//! count of descriptors held by sends) is released when the last part naming it is dropped.

use std::fs::File;
use std::ops::Deref;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

/// An open file parts are sent from, and what to release once they are (dropped with it).
pub struct HeldFile {
    file: Arc<File>,
    _release: Option<Box<dyn Send + Sync>>,
}

impl HeldFile {
    pub fn new(file: Arc<File>) -> Arc<HeldFile> {
        Arc::new(HeldFile { file, _release: None })
    }

    /// `release` is dropped with the last part that names the file.
    pub fn with_release(file: Arc<File>, release: Box<dyn Send + Sync>) -> Arc<HeldFile> {
        Arc::new(HeldFile { file, _release: Some(release) })
    }
}

impl Deref for HeldFile {
    type Target = File;
    fn deref(&self) -> &File {
        &self.file
    }
}

impl std::fmt::Debug for HeldFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldFile").field("file", &self.file).finish()
    }
}

/// `len` bytes of `file` from `pos`.
#[derive(Debug, Clone)]
pub struct FileRange {
    pub file: Arc<HeldFile>,
    pub pos: u64,
    pub len: usize,
}

/// One part of a chain.
#[derive(Debug, Clone)]
pub enum Part {
    Memory(Bytes),
    File(FileRange),
}

impl Part {
    pub fn len(&self) -> usize {
        match self {
            Part::Memory(b) => b.len(),
            Part::File(f) => f.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Bytes to send, in order: the parts concatenated.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    parts: Vec<Part>,
    len: usize,
}

impl Chain {
    /// Appends a part (an empty one is dropped).
    pub fn push(&mut self, part: Part) {
        if !part.is_empty() {
            self.len += part.len();
            self.parts.push(part);
        }
    }

    /// Appends every part of `other`.
    pub fn append(&mut self, other: Chain) {
        other.parts.into_iter().for_each(|p| self.push(p));
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Bytes of the file range parts.
    pub fn file_bytes(&self) -> usize {
        self.parts.iter().filter(|p| matches!(p, Part::File(_))).map(Part::len).sum()
    }

    /// Whether some part is a file range.
    pub fn has_files(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::File(_)))
    }

    /// The bytes in memory: file ranges are read (tests, and a sink that cannot send files;
    /// blocking reads).
    pub fn to_bytes(&self) -> std::io::Result<Bytes> {
        if let [Part::Memory(b)] = self.parts.as_slice() {
            return Ok(b.clone());
        }
        let mut out = BytesMut::with_capacity(self.len);
        for p in &self.parts {
            match p {
                Part::Memory(b) => out.extend_from_slice(b),
                Part::File(f) => out.extend_from_slice(&f.read()?),
            }
        }
        Ok(out.freeze())
    }
}

impl FileRange {
    /// The range's bytes, read (a blocking read).
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; self.len];
        self.file.read_exact_at(&mut buf, self.pos)?;
        Ok(buf)
    }
}

impl From<Bytes> for Chain {
    fn from(b: Bytes) -> Chain {
        let mut c = Chain::default();
        c.push(Part::Memory(b));
        c
    }
}

impl From<BytesMut> for Chain {
    fn from(b: BytesMut) -> Chain {
        Chain::from(b.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_chain_is_its_parts_in_order_and_drops_empty_ones() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789").unwrap();
        let file = HeldFile::new(Arc::new(f));
        let mut c = Chain::from(Bytes::from_static(b"head:"));
        c.push(Part::Memory(Bytes::new()));
        c.push(Part::File(FileRange { file: file.clone(), pos: 2, len: 5 }));
        c.push(Part::File(FileRange { file, pos: 0, len: 0 }));
        c.append(Chain::from(Bytes::from_static(b":tail")));
        assert_eq!(c.parts().len(), 3);
        assert_eq!(c.len(), 15);
        assert_eq!(c.file_bytes(), 5);
        assert!(c.has_files());
        assert_eq!(&c.to_bytes().unwrap()[..], b"head:23456:tail");
    }

    #[test]
    fn the_release_goes_with_the_last_part() {
        struct Flag(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let held = HeldFile::with_release(Arc::new(tempfile::tempfile().unwrap()), Box::new(Flag(released.clone())));
        let mut c = Chain::default();
        c.push(Part::File(FileRange { file: held.clone(), pos: 0, len: 1 }));
        c.push(Part::File(FileRange { file: held, pos: 1, len: 1 }));
        let copy = c.clone();
        drop(c);
        assert!(!released.load(std::sync::atomic::Ordering::SeqCst));
        drop(copy);
        assert!(released.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn reading_past_the_end_of_a_file_is_an_error() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"abc").unwrap();
        let c = {
            let mut c = Chain::default();
            c.push(Part::File(FileRange { file: HeldFile::new(Arc::new(f)), pos: 1, len: 5 }));
            c
        };
        assert!(c.to_bytes().is_err());
    }
}
