#!/usr/bin/env python3
"""The compaction row (issue 11): chronik's log cleaner against Apache Kafka's, in one run.
Started by benches/compaction/run.sh, which installs the dependencies and builds chronik first.

Workload: --mb MB of keyed updates (--value-bytes values) spread evenly over --keys keys, produced
with confluent-kafka (acks=all, idempotent, lz4 off) to one partition with segment.bytes=--segment-mb.
For each target (chronik standalone, Kafka KRaft single node), each in a fresh data directory:

  1. `plain` run: topic with cleanup.policy=delete. Fill pass (the workload once), a pause as long as
     the compacted run waited, then a measured pass (the workload again): produce MB/s without a
     cleaner.
  2. `compact` run: topic with cleanup.policy=compact. Fill pass; wait until the cleaner starts (the
     partition directory shrinks; bounded); the measured pass runs while the cleaner works: produce
     MB/s during cleaning. Then wait until the directory stays the same size for --settle seconds:
     the cleaning time is from the end of the measured pass to the last shrink. The broker's I/O over
     that time comes from /proc/PID/io (write_bytes, rchar). Finally every record is read back:
     the number of distinct keys must be --keys, and each key's last value must be the last one sent.
  3. The cleaner's own work over the compact run, from each broker's log: runs, MiB read (the
     key-map pass and the rewrite pass, for both) and seconds (chronik's `cleaned partition` lines; Kafka's LogCleaner statistics): the speed
     comparison of the two cleaners (MiB processed per cleaner second).

Both targets use their default cleaner settings (1 thread, min.cleanable.dirty.ratio 0.5) except
the backoff, --backoff-ms for both (Kafka's log.cleaner.backoff.ms, chronik's [cleaner] backoff;
default 1000 instead of 15000, so that the cleaning time measures the cleaner and not where the
15 s sleep happened to be), and the page-cache row (chronik storage.fsync=interval, Kafka's
default flushing), so that what is compared is the cleaner.

Outputs: benches/compaction/results/<UTC time>/{runs.csv,report.md} and the logs. Nothing here
asserts a speed: it reports what it measured, with chronik/Kafka ratios from the same run.
"""
import argparse
import csv
import datetime
import os
import re
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benches" / "throughput"))
import bench as tp  # noqa: E402  (targets, ports and process helpers of the throughput benchmark)


def dir_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            if f.endswith(".deleted"):   # Kafka unlinks replaced segments file.delete.delay.ms later
                continue
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def proc_io(pids):
    out = {"write_bytes": 0, "read_bytes": 0, "rchar": 0, "wchar": 0}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                k, v = line.split(":")
                if k in out:
                    out[k] += int(v)
        except OSError:
            pass
    return out


def value_for(key, rnd, size):
    stamp = f"{key}:{rnd}:".encode()
    return stamp + b"x" * max(0, size - len(stamp))


def produce_pass(bootstrap, topic, keys, records, value_bytes, rnd):
    """Sends `records` updates round-robin over `keys`; returns (seconds, MB/s)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "batch.size": 262144, "queue.buffering.max.kbytes": 262144,
                  "compression.type": "none"})
    errors = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)
    t0 = time.monotonic()
    for i in range(records):
        k = i % keys
        while True:
            try:
                p.produce(topic, key=b"k%07d" % k, value=value_for(k, rnd, value_bytes), on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(300)
    secs = time.monotonic() - t0
    if left or errors:
        raise RuntimeError(f"produce to {topic}: {left} undelivered, {len(errors)} errors: {errors[:3]}")
    return secs, records * value_bytes / secs / 1e6


def create_topic(bootstrap, topic, policy, segment_bytes):
    from confluent_kafka import admin as ck_admin
    a = ck_admin.AdminClient({"bootstrap.servers": bootstrap})
    cfg = {"cleanup.policy": policy, "segment.bytes": str(segment_bytes)}
    fut = a.create_topics([ck_admin.NewTopic(topic, num_partitions=1, replication_factor=1, config=cfg)],
                          request_timeout=60)
    fut[topic].result(timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        t = a.list_topics(topic, timeout=10).topics.get(topic)
        if t and t.error is None and all(p.leader >= 0 for p in t.partitions.values()):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{topic} has no leader")


def read_back(bootstrap, topic, keys, rounds, value_bytes):
    """Reads the partition from the beginning; returns (records read, distinct keys, stale keys)."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{time.time_ns()}",
                  "enable.auto.commit": False, "fetch.max.bytes": 52428800})
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    latest, n, pos = {}, 0, lo
    deadline = time.monotonic() + 600
    while pos < hi and time.monotonic() < deadline:
        for m in c.consume(10000, timeout=1):
            if m.error():
                raise RuntimeError(m.error())
            latest[m.key()] = m.value()
            n += 1
            pos = m.offset() + 1
    c.close()
    if pos < hi:
        raise RuntimeError(f"read back of {topic} stopped at {pos} of {hi}")
    want_last = rounds - 1
    stale = sum(1 for k, v in latest.items()
                if v != value_for(int(k[1:]), want_last, value_bytes))
    return n, len(latest), stale


def cleaner_work(target, wd):
    """(runs, MiB processed, seconds) of every cleaning run of the target, from its own log:
    chronik's `cleaned partition` lines (`read`: the key-map pass and the rewrite pass, `seconds`),
    Kafka's LogCleaner statistics (MB = MiB, 0.1 s resolution): `X MB of log processed in Y seconds`
    counts only the rewrite pass, so its `Indexed Z MB` (the key-map pass) is added, and both
    cleaners' MiB are the bytes they read."""
    runs, mib, secs = 0, 0.0, 0.0
    if isinstance(target, tp.ChronikStandalone):
        for line in (wd / "chronik.log").read_text(errors="replace").splitlines():
            r, s = re.search(r"\bread: (\d+)", line), re.search(r"\bseconds: \"?([0-9.]+)", line)
            if "cleaned partition" in line and r and s:
                runs, mib, secs = runs + 1, mib + int(r.group(1)) / 1048576, secs + float(s.group(1))
    else:
        text = (wd / "kafka" / "kafka.log").read_text(errors="replace")
        for m in re.finditer(r"([\d,]+\.\d) MB of log processed in ([\d,]+\.\d) seconds", text):
            runs += 1
            mib += float(m.group(1).replace(",", ""))
            secs += float(m.group(2).replace(",", ""))
        for m in re.finditer(r"Indexed ([\d,]+\.\d) MB in", text):
            mib += float(m.group(1).replace(",", ""))
    return runs, round(mib, 1), round(secs, 2)


def partition_dir(target, topic):
    if isinstance(target, tp.ChronikStandalone):
        return target.workdir / "data"          # the only data besides a tiny __meta
    return target.workdir / "kafka" / "logs" / f"{topic}-0"


def run(args, outdir, name, policy):
    wd = outdir / f"{name}-{policy}"
    wd.mkdir(parents=True)
    target = tp.ChronikStandalone(wd, "pagecache") if name == "chronik" else tp.KafkaSingle(wd, "pagecache")
    tp.LIVE.append(target)
    row = {"target": name, "policy": policy}
    records = args.mb * 1_000_000 // args.value_bytes
    try:
        target.start()
        topic = f"cmp-{policy}"
        create_topic(target.bootstrap, topic, policy, args.segment_mb * 1_048_576)
        d = partition_dir(target, topic)
        row["fill_s"], row["fill_mb_s"] = produce_pass(target.bootstrap, topic, args.keys, records, args.value_bytes, 0)
        size_filled = dir_bytes(d)
        t_wait = time.monotonic()
        if policy == "compact":   # wait (bounded) for the cleaner's first shrink
            while time.monotonic() - t_wait < args.start_wait and dir_bytes(d) >= size_filled:
                time.sleep(0.5)
            row["cleaner_started_after_s"] = round(time.monotonic() - t_wait, 1)
        else:
            time.sleep(args.pause)
        io0 = proc_io(target.pids())
        row["measured_s"], row["measured_mb_s"] = produce_pass(target.bootstrap, topic, args.keys, records,
                                                               args.value_bytes, 1)
        t_end = time.monotonic()
        io1 = proc_io(target.pids())
        size_before = dir_bytes(d)
        last_size, last_change = size_before, t_end
        if policy == "compact":
            while time.monotonic() - last_change < args.settle and time.monotonic() - t_end < args.max_clean:
                time.sleep(1)
                s = dir_bytes(d)
                if s < last_size:
                    last_change = time.monotonic()
                last_size = s
        io2 = proc_io(target.pids())
        row.update({
            "size_before_mb": round(size_before / 1e6, 1), "size_after_mb": round(last_size / 1e6, 1),
            "clean_s": round(last_change - t_end, 1) if policy == "compact" else "",
            "produce_write_mb": round((io1["write_bytes"] - io0["write_bytes"]) / 1e6, 1),
            "clean_write_mb": round((io2["write_bytes"] - io1["write_bytes"]) / 1e6, 1),
            "clean_read_mb": round((io2["rchar"] - io1["rchar"]) / 1e6, 1),
        })
        if policy == "compact":
            row["cleaner_runs"], row["cleaner_mib"], row["cleaner_s"] = cleaner_work(target, wd)
        n, distinct, stale = read_back(target.bootstrap, topic, args.keys, 2, args.value_bytes)
        row.update({"read_records": n, "distinct_keys": distinct, "stale_keys": stale})
        if distinct != args.keys or stale:
            row["error"] = f"read back: {distinct} keys of {args.keys}, {stale} not at their last value"
    except Exception as e:  # noqa: BLE001 - a failed run is reported, not fatal to the others
        row["error"] = str(e)
        tp.log(f"{name}/{policy}: {e}")
    finally:
        target.stop()
        tp.LIVE.remove(target)
        # The logs stay for reading; the gigabytes of data do not (a run of --mb 1024 leaves 4 GB).
        for data in (wd / "data", wd / "kafka" / "logs"):
            shutil.rmtree(data, ignore_errors=True)
    for k in ("fill_mb_s", "measured_mb_s", "fill_s", "measured_s"):
        if k in row:
            row[k] = round(row[k], 2)
    tp.log(f"{name}/{policy}: {row}")
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=256, help="MB per pass (the issue's figure is 1024)")
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--value-bytes", type=int, default=1000)
    ap.add_argument("--segment-mb", type=int, default=32)
    ap.add_argument("--start-wait", type=float, default=60, help="max seconds to wait for the cleaner to start")
    ap.add_argument("--pause", type=float, default=20, help="pause of the plain run before its measured pass")
    ap.add_argument("--settle", type=float, default=40, help="seconds without shrinking that end cleaning")
    ap.add_argument("--max-clean", type=float, default=900)
    ap.add_argument("--targets", default="chronik,kafka")
    ap.add_argument("--backoff-ms", type=int, default=1000, help="cleaner backoff of both targets")
    ap.add_argument("--cleaner-nice", type=int, default=None,
                    help="chronik's [cleaner] nice (default: chronik's own default); 0 = same priority as produce")
    args = ap.parse_args()
    tp.ROW_KAFKA_PROPS["pagecache"] = [*tp.ROW_KAFKA_PROPS["pagecache"], f"log.cleaner.backoff.ms={args.backoff_ms}"]
    tp.ROW_CHRONIK_ENV["pagecache"] = {**tp.ROW_CHRONIK_ENV["pagecache"], "CHRONIK_CLEANER__BACKOFF": f"{args.backoff_ms}ms"}
    if args.cleaner_nice is not None:
        tp.ROW_CHRONIK_ENV["pagecache"]["CHRONIK_CLEANER__NICE"] = str(args.cleaner_nice)
    started = datetime.datetime.now(datetime.timezone.utc)
    outdir = REPO / "benches" / "compaction" / "results" / started.strftime("%Y%m%dT%H%M%SZ")
    outdir.mkdir(parents=True)
    rows = []
    for name in args.targets.split(","):
        for policy in ("delete", "compact"):
            rows.append(run(args, outdir, name, policy))
    keys = sorted({k for r in rows for k in r})
    with open(outdir / "runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    by = {(r["target"], r["policy"]): r for r in rows}
    md = [f"## Compaction ({started:%Y-%m-%d %H:%M} UTC)", "",
          f"`{os.environ.get('BENCH_COMMAND', 'python3 benches/compaction/bench.py')}`: {args.mb} MB per pass of "
          f"{args.value_bytes}-byte values over {args.keys:,} keys, segment.bytes {args.segment_mb} MiB, one "
          f"partition, page-cache row, cleaner backoff {args.backoff_ms} ms on both.", "",
          "| target | produce MB/s, no cleaner | produce MB/s, cleaner running | ratio | cleaning s | "
          "cleaner writes MB | size before → after MB | keys read back |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in args.targets.split(","):
        p, c = by.get((name, "delete"), {}), by.get((name, "compact"), {})
        ratio = (c.get("measured_mb_s", 0) / p["measured_mb_s"]) if p.get("measured_mb_s") else 0
        md.append(f"| {name} | {p.get('measured_mb_s', p.get('error', '-'))} | "
                  f"{c.get('measured_mb_s', c.get('error', '-'))} | {ratio:.2f} | {c.get('clean_s', '-')} | "
                  f"{c.get('clean_write_mb', '-')} | {c.get('size_before_mb', '-')} → {c.get('size_after_mb', '-')} | "
                  f"{c.get('distinct_keys', '-')} ({c.get('stale_keys', '-')} stale) |")
    md += ["", "Cleaner work over the whole run (both passes), from each broker's own log:", "",
           "| target | cleaning runs | MiB processed | cleaner seconds | MiB/s |", "| --- | --- | --- | --- | --- |"]
    for name in args.targets.split(","):
        c = by.get((name, "compact"), {})
        rate = c["cleaner_mib"] / c["cleaner_s"] if c.get("cleaner_s") else 0
        md.append(f"| {name} | {c.get('cleaner_runs', '-')} | {c.get('cleaner_mib', '-')} | "
                  f"{c.get('cleaner_s', '-')} | {rate:.1f} |")
    ck, kk = by.get(("chronik", "compact"), {}), by.get(("kafka", "compact"), {})
    if ck.get("cleaner_s") and kk.get("cleaner_s") and ck.get("cleaner_mib") and kk.get("cleaner_mib"):
        speed = (ck["cleaner_mib"] / ck["cleaner_s"]) / (kk["cleaner_mib"] / kk["cleaner_s"])
        md += ["", f"chronik/Kafka cleaner speed (MiB processed per cleaner second): {speed:.2f} (higher is "
               f"faster); cleaner seconds {ck['cleaner_s']} against {kk['cleaner_s']}. \"cleaning s\" above is "
               "only how long the size kept shrinking after the produce pass."]
    errs = [f"- {r['target']}/{r['policy']}: {r['error']}" for r in rows if r.get("error")]
    if errs:
        md += ["", "Errors:", *errs]
    (outdir / "report.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
