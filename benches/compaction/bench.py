"""Compaction benchmark (issue 11), chronik vs Apache Kafka in the same run, same client, same
workload: MB of updates over KEYS keys (values of VALUE bytes, lz4 off, acks=all).

For each target:
  1. baseline: produce the workload into a cleanup.policy=delete topic (no cleaning): MB/s;
  2. compacted: produce it into a cleanup.policy=compact topic (segment.bytes SEGMENT, the cleaner
     eager: min.cleanable.dirty.ratio 0.01, backoff 1 s) while the cleaner runs: MB/s;
  3. then wait until the partition directory stops shrinking (the cleaner is done): the time from
     the last produce, and the bytes on disk before and after.
Printed as a table; nothing is asserted (a benchmark, not a test).
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "interop"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"port {port} never opened")


def dir_size(path):
    """Bytes of the partition's live files. Kafka renames what compaction replaced to `*.deleted`
    and unlinks it `file.delete.delay.ms` (60 s) later: those files are not counted."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file() and not f.name.endswith(".deleted"))


def topic_dir(data, topic, target):
    """The directory holding the partition's segments."""
    if target == "kafka":
        return Path(data) / "logs" / f"{topic}-0"
    # chronik: data/groups/<group id>; the newest group is the topic just created.
    groups = sorted((Path(data) / "groups").iterdir(), key=lambda p: int(p.name))
    return groups[-1]


def produce(ck, bootstrap, topic, mb, keys, value_size):
    p = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                     "batch.size": 262144, "compression.type": "none", "queue.buffering.max.kbytes": 262144})
    n = mb * 1024 * 1024 // value_size
    value = os.urandom(value_size)
    t0 = time.monotonic()
    for i in range(n):
        while True:
            try:
                p.produce(topic, key=f"key-{i % keys:06d}".encode(), value=value)
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(600) == 0
    return n, time.monotonic() - t0


def create(ck_admin, bootstrap, topic, config):
    a = ck_admin.AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([ck_admin.NewTopic(topic, num_partitions=1, replication_factor=1, config=config)])[topic].result(60)
    time.sleep(2)


def wait_compacted(path, quiet=15, timeout=1800):
    """Seconds until the directory size stops shrinking for `quiet` s, and the final size."""
    t0 = time.monotonic()
    last, last_change = dir_size(path), time.monotonic()
    while time.monotonic() - t0 < timeout:
        time.sleep(0.5)
        s = dir_size(path)
        if s < last:
            last, last_change = s, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            return last_change - t0, last
    return None, last


def start(target, work):
    port = free_port()
    data = Path(work) / target
    data.mkdir(parents=True)
    if target == "kafka":
        env = dict(os.environ, KAFKA_EXTRA_PROPS="log.cleaner.backoff.ms=1000\nlog.cleaner.threads=1\n"
                   "log.cleaner.dedupe.buffer.size=134217728")
        subprocess.run(["bash", str(ROOT / "benches/kafka/start-kafka.sh"), str(port), str(data)], env=env, check=True)
        stop = lambda: subprocess.run(["bash", str(ROOT / "benches/kafka/stop-kafka.sh"), str(data)], check=False)
    else:
        cfg = data / "chronik.toml"
        cfg.write_text('[cleaner]\nbackoff = "1s"\n')
        binary = os.environ.get("CHRONIK_BIN", str(ROOT / "target/release/chronik-server"))
        log = open(data / "chronik.log", "wb")
        proc = subprocess.Popen([binary, "standalone", "--config", str(cfg), "--data-dir", str(data / "d"),
                                 "--listen", f"127.0.0.1:{port}", "--advertised-addr", "127.0.0.1",
                                 "--admin-listen", f"127.0.0.1:{free_port()}"], stdout=log, stderr=subprocess.STDOUT,
                                # chronik rejects unknown CHRONIK_* variables: not CHRONIK_BIN.
                                env={k: v for k, v in os.environ.items() if k != "CHRONIK_BIN"})
        wait_port(port)
        stop = lambda: (proc.terminate(), proc.wait(30))
        data = data / "d"
    return f"127.0.0.1:{port}", data, stop


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024, help="MB of updates per phase (default 1024)")
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--value", type=int, default=1000, help="value bytes")
    ap.add_argument("--segment", type=int, default=64 << 20, help="segment.bytes")
    ap.add_argument("--targets", default="chronik,kafka")
    a = ap.parse_args()
    import confluent_kafka as ck
    import confluent_kafka.admin as ck_admin
    rows = []
    work = tempfile.mkdtemp(prefix="bench-compaction-")
    try:
        for target in a.targets.split(","):
            bootstrap, data, stop = start(target, work)
            try:
                create(ck_admin, bootstrap, "plain", {"cleanup.policy": "delete", "segment.bytes": str(a.segment)})
                n, secs = produce(ck, bootstrap, "plain", a.mb, a.keys, a.value)
                base = a.mb / secs
                create(ck_admin, bootstrap, "compacted", {"cleanup.policy": "compact", "segment.bytes": str(a.segment),
                                                          "min.cleanable.dirty.ratio": "0.01"})
                n, secs = produce(ck, bootstrap, "compacted", a.mb, a.keys, a.value)
                during = a.mb / secs
                path = topic_dir(data, "compacted", target)
                before = dir_size(path)
                took, after = wait_compacted(path)
                rows.append((target, n, base, during, took, before, after))
                print(f"[bench] {target}: baseline {base:.1f} MB/s, while cleaning {during:.1f} MB/s, "
                      f"compacted in {took} s after the last produce, {before} -> {after} bytes", flush=True)
            finally:
                stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{a.mb} MB of updates ({a.value}-byte values) over {a.keys} keys, segment.bytes {a.segment}")
    print("| target | records | produce MB/s (no cleaner) | produce MB/s (cleaner running) | ratio | "
          "compaction done after last produce (s) | bytes before -> after |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for t, n, base, during, took, before, after in rows:
        took = f"{took:.1f}" if took is not None else "not done"
        print(f"| {t} | {n} | {base:.1f} | {during:.1f} | {during / base:.0%} | {took} | {before} -> {after} |")


if __name__ == "__main__":
    main()
