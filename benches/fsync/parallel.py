#!/usr/bin/env python3
"""How this machine's disk takes the fsyncs of a durable round (docs/benchmarks.md, "Parallel
fsyncs"): 6 files (a node's 6 partitions) each get 64 KB appended, then are fdatasynced one after
another, by 6 threads at once, as one file, or with sync_file_range first; or overwrite 6 files
already filled with zeros (or fallocate'd) and fdatasync them by 6 threads. Prints rounds/s; a
benchmark, asserts nothing.

    python3 benches/fsync/parallel.py [DIR]   (DIR on the disk to measure; default a temp dir)
"""
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

D = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="fsync-bench-", dir=".")
os.makedirs(D, exist_ok=True)
N, CH, R = 6, 64 * 1024, 150
buf=os.urandom(CH)
def files(tag):
    return [os.open(f"{D}/{tag}{i}", os.O_WRONLY|os.O_CREAT|os.O_TRUNC|os.O_APPEND, 0o644) for i in range(N)]
def seq():
    fs=files("s"); t=time.monotonic()
    for _ in range(R):
        for f in fs: os.write(f, buf)
        for f in fs: os.fdatasync(f)
    return time.monotonic()-t
def par():
    fs=files("p"); ex=ThreadPoolExecutor(N); t=time.monotonic()
    for _ in range(R):
        for f in fs: os.write(f, buf)
        list(ex.map(os.fdatasync, fs))
    return time.monotonic()-t
def one():
    f=files("o")[0]; t=time.monotonic()
    for _ in range(R):
        for _ in range(N): os.write(f, buf)
        os.fdatasync(f)
    return time.monotonic()-t
def prefilled(tag, how):
    """6 files whose first R*CH bytes exist before the rounds: written with zeros and fsynced
    ("zeros"), or fallocate'd ("fallocate": unwritten extents). Each round overwrites in place."""
    fs=[os.open(f"{D}/{tag}{i}", os.O_RDWR|os.O_CREAT|os.O_TRUNC, 0o644) for i in range(N)]
    for f in fs:
        if how == "zeros":
            z = bytes(1 << 20)
            for _ in range(R*CH // len(z) + 1): os.write(f, z)
        else:
            os.posix_fallocate(f, 0, R*CH)
        os.fsync(f)
    return fs
def pre_par(how):
    fs=prefilled("z" + how[0], how); ex=ThreadPoolExecutor(N); t=time.monotonic(); off=0
    for _ in range(R):
        for f in fs: os.pwrite(f, buf, off)
        list(ex.map(os.fdatasync, fs))
        off+=CH
    return time.monotonic()-t
def sfr():
    # sync_file_range(WRITE) on each, then fdatasync each
    import ctypes; libc=ctypes.CDLL("libc.so.6", use_errno=True)
    fs=files("r"); t=time.monotonic(); off=0
    for _ in range(R):
        for f in fs: os.write(f, buf)
        for f in fs: libc.sync_file_range(f, ctypes.c_long(off), ctypes.c_long(CH), 2)
        for f in fs: os.fdatasync(f)
        off+=CH
    return time.monotonic()-t
for name, fn in [("sequential 6 files", seq), ("parallel 6 files", par), ("one file", one), ("sync_file_range+fdatasync", sfr),
                 ("parallel 6 zero-filled files", lambda: pre_par("zeros")), ("parallel 6 fallocated files", lambda: pre_par("fallocate")),
                 ("sequential 6 files", seq), ("parallel 6 files", par), ("one file", one),
                 ("parallel 6 zero-filled files", lambda: pre_par("zeros")), ("parallel 6 fallocated files", lambda: pre_par("fallocate"))]:
    s=fn(); print(f"{name:28s} {R/s:7.1f} rounds/s  {R*N*CH/s/1e6:6.1f} MB/s", flush=True)
shutil.rmtree(D, ignore_errors=True)
