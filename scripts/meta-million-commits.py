#!/usr/bin/env python3
"""Measures that `__meta` stays bounded on disk under many offset commits and that a restart is
quick (issue 11): starts target/release/chronik-server standalone in a temporary directory,
sends COMMITS offset commits (OffsetCommit v2, one partition each, standalone commits spread
over GROUPS groups x PARTITIONS partitions, pipelined over CONNECTIONS connections), prints the
size of data/meta, restarts the server, prints the time until it answers again and checks that
the last committed offsets came back (OffsetFetch v1).

    .deps/venv/bin/python scripts/meta-million-commits.py [--commits 1000000]

Not a test: it takes minutes. Everything is bounded (the commit count, every wait).
"""

import argparse
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "interop"))
import kafka_wire as kw  # noqa: E402

OFFSET_COMMIT, OFFSET_FETCH, CREATE_TOPICS = 8, 9, 19


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def commit_v2_body(group, topic, partition, offset):
    return (kw.string(group) + kw.i32(-1) + kw.string("") + kw.i64(-1)
            + kw.array([kw.string(topic) + kw.array([kw.i32(partition) + kw.i64(offset) + kw.string(None)])]))


def fetch_v1_body(group, topic, partitions):
    return kw.string(group) + kw.array([kw.string(topic) + kw.array([kw.i32(p) for p in partitions])])


def decode_fetch_v1(body):
    r = kw.Reader(body)
    out = {}
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            p, off = r.i32(), r.i64()
            r.string()
            r.i16()
            out[p] = off
    return out


def dir_size(p):
    return sum(f.stat().st_size for f in Path(p).rglob("*") if f.is_file())


def start(bin_, data, port):
    cmd = [str(bin_), "standalone", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}",
           "--advertised-addr", "127.0.0.1", "--admin-listen", "127.0.0.1:0"]
    log = open(data.parent / "broker.log", "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = t0 + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        try:
            if kw.api_versions_ok(f"127.0.0.1:{port}", timeout=2):
                return proc, time.monotonic() - t0
        except (OSError, AssertionError, ValueError):
            pass
        time.sleep(0.02)
    proc.kill()
    raise SystemExit("server did not start within 120 s")


def committer(bootstrap, jobs, window, errors):
    """Sends `jobs` (group, partition, offset) pipelined, at most `window` in flight."""
    s = kw.connect(bootstrap, timeout=60)
    inflight = 0
    for cid, (g, p, off) in enumerate(jobs):
        s.sendall(kw.request(OFFSET_COMMIT, 2, cid, commit_v2_body(g, "t", p, off)))
        inflight += 1
        if inflight >= window:
            resp = kw.read_response(s)
            assert resp is not None, "connection closed"
            inflight -= 1
            if resp[1][-2:] != b"\x00\x00":
                errors.append(resp[1][-2:])
    while inflight:
        resp = kw.read_response(s)
        assert resp is not None, "connection closed"
        inflight -= 1
        if resp[1][-2:] != b"\x00\x00":
            errors.append(resp[1][-2:])
    s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=1_000_000)
    ap.add_argument("--groups", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "chronik-server"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="meta-million-"))
    data = work / "data"
    data.mkdir()
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    proc, took = start(args.bin, data, port)
    try:
        body = kw.create_topics_v2_body("t", num_partitions=args.partitions)
        kw.roundtrip(bootstrap, CREATE_TOPICS, 2, body, timeout=30)
        time.sleep(1)
        jobs = [[] for _ in range(args.connections)]
        for i in range(args.commits):
            key = i % (args.groups * args.partitions)
            jobs[i % args.connections].append((f"g{key // args.partitions}", key % args.partitions, i))
        errors = []
        t0 = time.monotonic()
        threads = [threading.Thread(target=committer, args=(bootstrap, j, args.window, errors)) for j in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        secs = time.monotonic() - t0
        print(f"{args.commits} commits in {secs:.1f} s ({args.commits / secs:.0f}/s), {len(errors)} errors")
        time.sleep(3)  # let the last snapshot land
        meta = data / "meta"
        print(f"data/meta on disk: {dir_size(meta) / 1e6:.1f} MB; files: "
              + ", ".join(f"{f.name}={f.stat().st_size}" for f in sorted(meta.iterdir())))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        t_restart = time.monotonic()
        proc, took = start(args.bin, data, port)
        print(f"restart: answers ApiVersions after {took:.2f} s")
        last = {}
        for i in range(max(0, args.commits - args.groups * args.partitions), args.commits):
            key = i % (args.groups * args.partitions)
            last[(f"g{key // args.partitions}", key % args.partitions)] = i
        deadline = time.monotonic() + 60
        while True:
            got = decode_fetch_v1(kw.roundtrip(bootstrap, OFFSET_FETCH, 1,
                                               fetch_v1_body("g0", "t", list(range(args.partitions)))))
            want = {p: o for (g, p), o in last.items() if g == "g0"}
            if got == want:
                print(f"restart: committed offsets of g0 served after {time.monotonic() - t_restart:.2f} s")
                break
            assert time.monotonic() < deadline, f"offsets differ after restart: {got} vs {want}"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
