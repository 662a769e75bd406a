//! Where a connection's responses go. A [`Sink`] writes a response chain (`protocol::chain`) in
//! order: runs of memory parts with vectored writes (short parts joined first), file ranges
//! - on a plaintext TCP connection ([`TcpSink`]) with `sendfile`, from the page cache to the
//!   socket, so a Fetch's batches never enter the process (zero-copy fetch);
//! - on a TLS connection ([`StreamSink`]) by reading them first. A Fetch on a TLS listener asks
//!   its partitions for read bytes instead (`net::connection::sends_files`), so this only
//!   happens if a file range reaches such a sink some other way.
//!
//! `sendfile` runs on the network thread, as Kafka's network threads run it: a batch that is
//! not in the page cache makes that thread wait for the disk. Fetches read recently written
//! data almost always; the partition's Raft work never runs on this thread.

use std::future::Future;
use std::io::{self, IoSlice};

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt, Interest, WriteHalf};
use tokio::net::tcp::OwnedWriteHalf;

use crate::protocol::chain::{Chain, FileRange, Part};

/// Most buffers handed to one vectored write.
const MAX_IOV: usize = 64;

/// Memory parts shorter than this are copied together into one buffer before a write (a Fetch
/// response of many partitions is mostly short field runs and length prefixes between
/// records), so that a response costs a few writes, not one per part.
const SMALL_PART: usize = 4096;

/// The memory parts of a chain between two file ranges, short ones joined.
#[derive(Default)]
struct Run {
    bufs: Vec<Bytes>,
    small: bytes::BytesMut,
}

impl Run {
    fn push(&mut self, b: &Bytes) {
        if b.len() < SMALL_PART {
            self.small.extend_from_slice(b);
            return;
        }
        self.flush_small();
        self.bufs.push(b.clone());
    }

    fn flush_small(&mut self) {
        if !self.small.is_empty() {
            self.bufs.push(self.small.split().freeze());
        }
    }

    /// The buffers to write, in order; the run is empty afterwards.
    fn take(&mut self) -> Vec<Bytes> {
        self.flush_small();
        std::mem::take(&mut self.bufs)
    }
}

/// The writing half of a connection.
pub trait Sink: Unpin + 'static {
    /// Whether file ranges go out without entering the process.
    fn sends_files(&self) -> bool;
    /// Writes the whole chain.
    fn write_chain(&mut self, chain: Chain) -> impl Future<Output = io::Result<()>>;
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>>;
}

/// A connection's writing half as a [`Sink`].
pub struct Wire<W>(pub W);

/// A plaintext TCP connection's writing half.
pub type TcpSink = Wire<OwnedWriteHalf>;

/// Any other stream's writing half (TLS).
pub type StreamSink<S> = Wire<WriteHalf<S>>;

/// A stream that can send a file range: what differs between the sinks.
pub trait SendRange: AsyncWrite + Unpin {
    /// Whether a range goes out without entering the process.
    const SENDS_FILES: bool;
    fn send_range(&mut self, f: &FileRange) -> impl Future<Output = io::Result<()>>;
}

impl SendRange for OwnedWriteHalf {
    const SENDS_FILES: bool = true;
    async fn send_range(&mut self, f: &FileRange) -> io::Result<()> {
        send_file(self, f).await
    }
}

impl<S: AsyncWrite + Unpin> SendRange for WriteHalf<S> {
    const SENDS_FILES: bool = false;
    /// Read, then written (a blocking read; see the module doc).
    async fn send_range(&mut self, f: &FileRange) -> io::Result<()> {
        self.write_all(&f.read()?).await
    }
}

impl<W: SendRange + 'static> Sink for Wire<W> {
    fn sends_files(&self) -> bool {
        W::SENDS_FILES
    }

    /// Runs of memory parts with vectored writes, file ranges with `send_range`.
    async fn write_chain(&mut self, chain: Chain) -> io::Result<()> {
        let mut run = Run::default();
        for part in chain.parts() {
            match part {
                Part::Memory(b) => run.push(b),
                Part::File(f) => {
                    write_all_vectored(&mut self.0, &run.take()).await?;
                    self.0.send_range(f).await?;
                }
            }
        }
        write_all_vectored(&mut self.0, &run.take()).await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        self.0.shutdown().await
    }
}

/// Writes every byte of `bufs`, in order, with as few writes as the stream takes.
async fn write_all_vectored<W: AsyncWrite + Unpin>(w: &mut W, bufs: &[Bytes]) -> io::Result<()> {
    let (mut i, mut off) = (0, 0);
    while i < bufs.len() {
        let slices: Vec<IoSlice<'_>> = std::iter::once(&bufs[i][off..])
            .chain(bufs[i + 1..].iter().map(|b| &b[..]))
            .take(MAX_IOV)
            .map(IoSlice::new)
            .collect();
        let mut n = w.write_vectored(&slices).await?;
        if n == 0 && slices.iter().any(|s| !s.is_empty()) {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while i < bufs.len() && n >= bufs[i].len() - off {
            n -= bufs[i].len() - off;
            i += 1;
            off = 0;
        }
        off += n;
    }
    Ok(())
}

/// Sends a file range to the socket with `sendfile`, waiting for room as a write does. A file
/// shorter than the range (it cannot be: a range is of committed, written batches) ends the
/// connection with an error rather than a short response.
async fn send_file(w: &OwnedWriteHalf, f: &FileRange) -> io::Result<()> {
    let tcp: &tokio::net::TcpStream = w.as_ref();
    let (mut pos, mut left) = (f.pos, f.len);
    while left > 0 {
        tcp.writable().await?;
        let sent = tcp.try_io(Interest::WRITABLE, || {
            let file: &std::fs::File = &f.file;
            rustix::fs::sendfile(tcp, file, Some(&mut pos), left).map_err(io::Error::from)
        });
        match sent {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than its range")),
            Ok(n) => left -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::chain::HeldFile;
    use std::io::Write;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;

    fn chain(file: &Arc<HeldFile>) -> Chain {
        let mut c = Chain::from(Bytes::from_static(b"head"));
        for k in 0..100u64 {
            c.push(Part::Memory(Bytes::from(vec![k as u8; 10])));
        }
        c.push(Part::File(FileRange { file: file.clone(), pos: 5, len: 3_000_000 }));
        c.push(Part::Memory(Bytes::from_static(b"mid")));
        c.push(Part::File(FileRange { file: file.clone(), pos: 0, len: 17 }));
        c
    }

    fn file() -> Arc<HeldFile> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&(0..3_100_000u32).map(|i| (i % 253) as u8).collect::<Vec<_>>()).unwrap();
        HeldFile::new(Arc::new(f))
    }

    /// Both sinks write exactly the chain's bytes (the TCP one with sendfile, through a socket
    /// buffer far smaller than the file range, so it waits for room).
    #[test]
    fn both_sinks_write_the_chain_in_order() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let file = file();
            let expected = chain(&file).to_bytes().unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let reader = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).await.unwrap();
                got
            });
            let (_, wr) = tokio::net::TcpStream::connect(addr).await.unwrap().into_split();
            let mut sink = Wire(wr);
            assert!(sink.sends_files());
            sink.write_chain(chain(&file)).await.unwrap();
            sink.shutdown().await.unwrap();
            drop(sink);
            assert_eq!(reader.await.unwrap(), expected);

            let (a, mut b) = tokio::io::duplex(4096);
            let (_, wr) = tokio::io::split(a);
            let mut sink = Wire(wr);
            assert!(!sink.sends_files());
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                b.read_to_end(&mut got).await.unwrap();
                got
            });
            sink.write_chain(chain(&file)).await.unwrap();
            sink.shutdown().await.unwrap();
            drop(sink);
            assert_eq!(reader.await.unwrap(), expected);
        });
    }

    #[test]
    fn a_range_past_the_end_of_its_file_is_an_error() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let file = file();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let keep = tokio::spawn(async move { listener.accept().await.map(|(s, _)| s) });
            let (_, wr) = tokio::net::TcpStream::connect(addr).await.unwrap().into_split();
            let mut c = Chain::default();
            c.push(Part::File(FileRange { file, pos: 3_000_000, len: 200_000 }));
            let err = Wire(wr).write_chain(c).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
            drop(keep);
        });
    }
}
