"""Zero-copy fetch, measured (issue 15): what a consumer costs the broker.

    .deps/venv/bin/python benches/fetch/bench.py [--before BIN] [--records N] [--reps K] [--rounds R]

Targets, each started afresh in page-cache mode (`benches/throughput/bench.py`'s targets and
settings): chronik 1 node with this checkout's release build; with `--before BIN`, chronik with
that binary too (e.g. a build without zero-copy fetch); Apache Kafka 1 node (KRaft, which sends
with `sendfile`). For each: create topic `bench` (6 partitions), produce N 1 KB records
(ProducerPerformance, acks=all), then consume them K times with `AssignConsumerPerf`
(`check.crcs=false`, every partition assigned). For each consume: the broker's CPU seconds
(utime + stime of its processes, from /proc; utime shown apart) and the consumer's MB/s. Targets alternate over R
rounds so that a slow period of the machine hits each. Printed: the median broker CPU seconds per
GB consumed and the median consume MB/s of each target, and their ratios within this run. The
consumer JVM takes most of a core, so MB/s says little about the broker; CPU per GB does.

Needs what `benches/throughput/run.sh` installs and builds (the Kafka tools and broker jars,
AssignConsumerPerf in .deps/bench-classes).
"""
import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benches" / "throughput"))
import bench as tb  # noqa: E402  (benches/throughput/bench.py: targets, tools)

ROW = "pagecache"


def cpu_split(pids):
    """(user, system) CPU seconds of the processes, from /proc/PID/stat."""
    user = system = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / os.sysconf("SC_CLK_TCK")
        system += int(fields[12]) / os.sysconf("SC_CLK_TCK")
    return user, system


def one_target(name, cls, binary, args, outdir):
    """Runs one target once: [(broker cpu s, MB consumed, consume MB/s, user s)] for each consume."""
    workdir = Path(args.workdir) / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    logpath = outdir / f"{name}.log"
    saved = os.environ.get("CHRONIK_BIN")
    if binary:
        os.environ["CHRONIK_BIN"] = str(binary)
    t = cls(workdir, ROW)
    out = []
    try:
        t.start()
        tb.create_topic(t.bootstrap, "bench", 6, t.rf)
        tb.produce(t.bootstrap, "bench", args.records, logpath)
        time.sleep(2)  # page-cache mode: let the writes settle before the first consume
        pids = t.pids()
        for _ in range(args.reps):
            u0, s0 = cpu_split(pids)
            r = tb.consume(t.bootstrap, "bench", args.records, logpath)
            u1, s1 = cpu_split(pids)
            cpu, user = (u1 - u0) + (s1 - s0), u1 - u0
            mb = args.records * 1024 / 1e6
            out.append((cpu, mb, r["consume_mb_s"], user))
            tb.log(f"{name}: consume {r['consume_mb_s']:.1f} MB/s, broker {cpu:.2f} CPU-s ({user:.2f} user) "
                   f"for {mb:.0f} MB ({cpu / mb * 1000:.2f} CPU-s/GB)")
    finally:
        t.stop()
        if saved is None:
            os.environ.pop("CHRONIK_BIN", None)
        else:
            os.environ["CHRONIK_BIN"] = saved
        for f in workdir.glob("chronik.log"):
            shutil.copy(f, outdir / f"{name}-chronik.log")
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", help="another chronik-server binary to measure in the same run")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--reps", type=int, default=3, help="consumes per start")
    p.add_argument("--rounds", type=int, default=2, help="starts of each target, alternating")
    p.add_argument("--workdir", default="/tmp/chronik-fetch-bench")
    args = p.parse_args()
    outdir = REPO / "benches" / "fetch" / "results" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    outdir.mkdir(parents=True, exist_ok=True)
    targets = [("chronik", tb.ChronikStandalone, None)]
    if args.before:
        targets.append(("chronik-before", tb.ChronikStandalone, Path(args.before).resolve()))
    targets.append(("kafka", tb.KafkaSingle, None))
    got = {name: [] for name, _, _ in targets}
    for rnd in range(args.rounds):
        for name, cls, binary in targets:
            got[name] += one_target(f"{name}-r{rnd}", cls, binary, args, outdir)
    rows = {}
    for name, runs in got.items():
        if not runs:
            continue
        rows[name] = (statistics.median(c / mb * 1000 for c, mb, _, _ in runs),
                      statistics.median(r for _, _, r, _ in runs), len(runs),
                      statistics.median(u / mb * 1000 for _, mb, _, u in runs))
    lines = [f"load before/after: {os.getloadavg()[0]:.1f}", "",
             "| target | broker CPU-s per GB consumed | of which user | consume MB/s | consumes |",
             "| --- | --- | --- | --- | --- |"]
    for name, (cpu, mbs, n, user) in rows.items():
        lines.append(f"| {name} | {cpu:.2f} | {user:.2f} | {mbs:.1f} | {n} |")
    lines.append("")
    for a, b in [("chronik", "kafka"), ("chronik", "chronik-before"), ("chronik-before", "kafka")]:
        if a in rows and b in rows:
            lines.append(f"- CPU per GB {a} / {b}: {rows[a][0] / rows[b][0]:.2f}; "
                         f"MB/s {a} / {b}: {rows[a][1] / rows[b][1]:.2f}")
    text = "\n".join(lines)
    (outdir / "report.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
