#!/usr/bin/env python3
"""The compaction row (issue 11): chronik's log cleaner against Apache Kafka's, in one run.
Started by benches/compaction/run.sh, which installs the dependencies and builds chronik first.

Workload: --mb MB of keyed updates (--value-bytes values) spread evenly over --keys keys, produced
with confluent-kafka (acks=all, idempotent, lz4 off) to one partition with segment.bytes=--segment-mb.
Each target (chronik standalone, Kafka KRaft single node) runs once, in a fresh data directory, with
two topics: `cmp-compact` (cleanup.policy=compact) and `cmp-delete` (cleanup.policy=delete).

  1. Fill: the workload once into each topic.
  2. --passes rounds of two measured passes (the workload again), back to back on the same broker:
     `delete` (to cmp-delete, after the cleaner has gone idle: the compacted partition's size did not
     change for --settle seconds) then `compact` (to cmp-compact: the new dirty data wakes the cleaner,
     which works during the pass). A round's ratio is compact MB/s / delete MB/s: the produce
     throughput during cleaning against without, measured seconds apart on the same process and disk
     (a fresh process per pass moved the baseline alone by 20 %). The figure is the median over the
     rounds. After each compact pass the time until the partition stops shrinking is that round's
     cleaning time, and the broker's I/O over it comes from /proc/PID/io (write_bytes, rchar).
  3. Every record of cmp-compact is read back: the number of distinct keys must be --keys, and each
     key's last value must be the last one sent.
  4. The cleaner's own work over the run, from each broker's log: runs, MiB read (the key-map pass and
     the rewrite pass, for both) and seconds (chronik's `cleaned partition` lines; Kafka's LogCleaner
     statistics): the speed comparison of the two cleaners (MiB processed per cleaner second).

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
import statistics
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


def partition_dir(target, topic, before=()):
    """The directory of `topic`'s one partition. chronik names a group's directory by its group id,
    so it is the group directory that is not in `before` (those that existed before the topic)."""
    if isinstance(target, tp.ChronikStandalone):
        groups = target.workdir / "data" / "groups"
        new = [d for d in groups.iterdir() if d.name not in before] if groups.exists() else []
        if len(new) != 1:
            raise RuntimeError(f"cannot tell {topic}'s directory: new group directories {new}")
        return new[0]
    return target.workdir / "kafka" / "logs" / f"{topic}-0"


def group_dirs(target):
    groups = target.workdir / "data" / "groups"
    return {d.name for d in groups.iterdir()} if isinstance(target, tp.ChronikStandalone) and groups.exists() else set()


def wait_idle(d, settle, limit):
    """Bounded wait until `d` stops shrinking for `settle` seconds; returns (seconds until its last
    shrink, final size)."""
    t0 = time.monotonic()
    last_size, last_change = dir_bytes(d), t0
    while time.monotonic() - last_change < settle and time.monotonic() - t0 < limit:
        time.sleep(1)
        size = dir_bytes(d)
        if size < last_size:
            last_change = time.monotonic()
        last_size = size
    return round(last_change - t0, 1), last_size


def run(args, outdir, name):
    """One target: fill both topics, then --passes rounds of (delete pass, compact pass)."""
    wd = outdir / name
    wd.mkdir(parents=True)
    target = tp.ChronikStandalone(wd, "pagecache") if name == "chronik" else tp.KafkaSingle(wd, "pagecache")
    tp.LIVE.append(target)
    rows, summary = [], {"target": name}
    records = args.mb * 1_000_000 // args.value_bytes
    try:
        target.start()
        dirs = {}
        for policy in ("compact", "delete"):
            before = group_dirs(target)
            create_topic(target.bootstrap, f"cmp-{policy}", policy, args.segment_mb * 1_048_576)
            dirs[policy] = partition_dir(target, f"cmp-{policy}", before)
            secs, mb_s = produce_pass(target.bootstrap, f"cmp-{policy}", args.keys, records, args.value_bytes, 0)
            rows.append({"target": name, "round": 0, "policy": policy, "pass": "fill",
                         "seconds": round(secs, 2), "mb_s": round(mb_s, 2)})
        for rnd in range(1, args.passes + 1):
            idle_s, _ = wait_idle(dirs["compact"], args.settle, args.max_clean)
            for policy in ("delete", "compact"):
                io0 = proc_io(target.pids())
                size0 = dir_bytes(dirs["compact"])
                secs, mb_s = produce_pass(target.bootstrap, f"cmp-{policy}", args.keys, records,
                                          args.value_bytes, rnd)
                row = {"target": name, "round": rnd, "policy": policy, "pass": "measured",
                       "seconds": round(secs, 2), "mb_s": round(mb_s, 2)}
                if policy == "delete":
                    row["cleaner_idle_wait_s"] = idle_s
                else:
                    io1 = proc_io(target.pids())
                    size1 = dir_bytes(dirs["compact"])
                    clean_s, size2 = wait_idle(dirs["compact"], args.settle, args.max_clean)
                    io2 = proc_io(target.pids())
                    row.update({
                        "size_before_mb": round(size1 / 1e6, 1), "size_after_mb": round(size2 / 1e6, 1),
                        # A pass that grew the partition by less than it wrote saw the cleaner at work.
                        "grew_mb": round((size1 - size0) / 1e6, 1),
                        "clean_s": clean_s,
                        "produce_write_mb": round((io1["write_bytes"] - io0["write_bytes"]) / 1e6, 1),
                        "clean_write_mb": round((io2["write_bytes"] - io1["write_bytes"]) / 1e6, 1),
                        "clean_read_mb": round((io2["rchar"] - io1["rchar"]) / 1e6, 1),
                    })
                rows.append(row)
                tp.log(f"{name} round {rnd}: {row}")
        summary["cleaner_runs"], summary["cleaner_mib"], summary["cleaner_s"] = cleaner_work(target, wd)
        n, distinct, stale = read_back(target.bootstrap, "cmp-compact", args.keys, args.passes + 1,
                                       args.value_bytes)
        summary.update({"read_records": n, "distinct_keys": distinct, "stale_keys": stale})
        if distinct != args.keys or stale:
            summary["error"] = f"read back: {distinct} keys of {args.keys}, {stale} not at their last value"
    except Exception as e:  # noqa: BLE001 - a failed target is reported, not fatal to the other
        summary["error"] = str(e)
        tp.log(f"{name}: {e}")
    finally:
        target.stop()
        tp.LIVE.remove(target)
        # The logs stay for reading; the gigabytes of data do not (a run of --mb 1024 leaves 6+ GB).
        for data in (wd / "data", wd / "kafka" / "logs"):
            shutil.rmtree(data, ignore_errors=True)
    ratios = []
    for rnd in range(1, args.passes + 1):
        by = {r["policy"]: r for r in rows if r["round"] == rnd}
        if "delete" in by and "compact" in by and by["delete"]["mb_s"]:
            ratios.append(round(by["compact"]["mb_s"] / by["delete"]["mb_s"], 3))
    summary["ratios"] = ratios
    summary["median_ratio"] = round(statistics.median(ratios), 3) if ratios else None
    tp.log(f"{name}: {summary}")
    return rows, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=256, help="MB per pass (the issue's figure is 1024)")
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--value-bytes", type=int, default=1000)
    ap.add_argument("--segment-mb", type=int, default=32)
    ap.add_argument("--passes", type=int, default=3, help="rounds of (delete pass, compact pass); the median counts")
    ap.add_argument("--settle", type=float, default=15, help="seconds without shrinking that end cleaning")
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
    rows, sums = [], {}
    for name in args.targets.split(","):
        r, sums[name] = run(args, outdir, name)
        rows += r
    keys = sorted({k for r in rows for k in r})
    with open(outdir / "runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    md = [f"## Compaction ({started:%Y-%m-%d %H:%M} UTC)", "",
          f"`{os.environ.get('BENCH_COMMAND', 'python3 benches/compaction/bench.py')}`: {args.mb} MB per pass of "
          f"{args.value_bytes}-byte values over {args.keys:,} keys, segment.bytes {args.segment_mb} MiB, one "
          f"partition, page-cache row, cleaner backoff {args.backoff_ms} ms on both; {args.passes} rounds of a "
          "pass to a delete topic (cleaner idle) then one to a compacted topic (cleaner running), same broker.", "",
          "| target | round | produce MB/s, no cleaner | produce MB/s, cleaner running | ratio | "
          "cleaning s after the pass | cleaner writes MB | size before → after MB |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in args.targets.split(","):
        for rnd in range(1, args.passes + 1):
            by = {r["policy"]: r for r in rows if r["target"] == name and r["round"] == rnd}
            d, c = by.get("delete", {}), by.get("compact", {})
            ratio = c["mb_s"] / d["mb_s"] if d.get("mb_s") and c.get("mb_s") else 0
            md.append(f"| {name} | {rnd} | {d.get('mb_s', '-')} | {c.get('mb_s', '-')} | {ratio:.2f} | "
                      f"{c.get('clean_s', '-')} | {c.get('clean_write_mb', '-')} | "
                      f"{c.get('size_before_mb', '-')} → {c.get('size_after_mb', '-')} |")
    md += ["", "| target | median ratio | keys read back | cleaning runs | MiB processed | cleaner seconds | "
           "MiB/s |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in args.targets.split(","):
        c = sums[name]
        rate = c["cleaner_mib"] / c["cleaner_s"] if c.get("cleaner_s") else 0
        md.append(f"| {name} | {c.get('median_ratio', '-')} | {c.get('distinct_keys', '-')} "
                  f"({c.get('stale_keys', '-')} stale) | {c.get('cleaner_runs', '-')} | {c.get('cleaner_mib', '-')} | "
                  f"{c.get('cleaner_s', '-')} | {rate:.1f} |")
    ck, kk = sums.get("chronik", {}), sums.get("kafka", {})
    if ck.get("cleaner_s") and kk.get("cleaner_s") and ck.get("cleaner_mib") and kk.get("cleaner_mib"):
        speed = (ck["cleaner_mib"] / ck["cleaner_s"]) / (kk["cleaner_mib"] / kk["cleaner_s"])
        md += ["", f"chronik/Kafka cleaner speed (MiB processed per cleaner second): {speed:.2f} (higher is "
               f"faster); cleaner seconds {ck['cleaner_s']} against {kk['cleaner_s']}. \"cleaning s\" above is "
               "only how long the size kept shrinking after the pass."]
    errs = [f"- {name}: {c['error']}" for name, c in sums.items() if c.get("error")]
    if errs:
        md += ["", "Errors:", *errs]
    (outdir / "report.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
