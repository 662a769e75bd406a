#!/usr/bin/env python3
"""chronik vs Apache Kafka, side by side in one run (issue 6). Started by benches/throughput/run.sh,
which installs the dependencies and builds chronik first; see docs/benchmarks.md.

Targets: chronik-1 (standalone), kafka-1 (Kafka KRaft combined, 1 node), chronik-3 (3 nodes, RF 3),
kafka-3 (3 nodes, RF 3, min.insync.replicas=2). Rows: "durable" (chronik fsync=always vs Kafka
log.flush.interval.messages=1) and "pagecache" (chronik storage.fsync=interval vs Kafka defaults).

Every measurement starts the target afresh in an empty data directory, creates the topic(s),
produces a warm-up topic, then runs org.apache.kafka.tools.ProducerPerformance (acks=all, default
idempotent producer, 1 KB records, a fixed record count) and then AssignConsumerPerf (the measurement
of ConsumerPerformance without a consumer group) over the same records, then stops the target and
deletes its data. Targets alternate (chronik-1, kafka-1, chronik-3, kafka-3, chronik-1, ...); each
is measured --reps times per row, and the medians are reported with chronik/Kafka ratios.

Then: the scale curve (produce throughput at 1, 6, 24, 96 partitions; chronik-1 and kafka-1, or with
--scale-nodes 3 chronik-3 and kafka-3 at RF 3) and
chronik's RSS per partition with 1,000 partitions.

Outputs go to benches/throughput/results/<UTC time>/: runs.csv (every run), summary.csv (medians and
ratios), scale.csv, report.md (tables and the machine), and the logs of every process. report.md
also replaces the results section of docs/benchmarks.md (unless --no-docs).

Nothing here asserts a speed: a benchmark reports what it measured.
"""
import argparse
import csv
import datetime
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "interop"))
import cluster as chronik_cluster  # noqa: E402  (tests/interop/cluster.py: 3-node chronik launcher)
import kafka_wire  # noqa: E402

DEPS = REPO / ".deps"
TOOLS_CP = f"{DEPS}/kafka-tools/lib/*:{DEPS}/bench-classes"
CLIENT_JVM = ["-Xmx512m", "-XX:+UseSerialGC", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]
KAFKA_HEAP = os.environ.get("BENCH_KAFKA_HEAP", "-Xmx1g -Xms1g")
# Kafka's own defaults for its thread pools (start-kafka.sh lowers them to 2 for tests).
KAFKA_COMMON_PROPS = ["num.network.threads=3", "num.io.threads=8"]
ROW_KAFKA_PROPS = {"durable": ["log.flush.interval.messages=1"], "pagecache": []}
ROW_CHRONIK_ENV = {"durable": {}, "pagecache": {"CHRONIK_STORAGE__FSYNC": "interval"}}
ROWS = ("durable", "pagecache")
TARGETS = ("chronik-1", "kafka-1", "chronik-3", "kafka-3")
LABEL = {"chronik-1": "chronik, 1 node", "kafka-1": "Kafka, 1 node",
         "chronik-3": "chronik, 3 nodes RF 3", "kafka-3": "Kafka, 3 nodes RF 3"}
PERF_RX = re.compile(
    r"(\d+) (?:steady state )?records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")
CONSUME_RX = re.compile(r"RESULT records=(\d+) bytes=(\d+) fetch_ms=([\d.]+) mb_per_s=([\d.]+) "
                        r"records_per_s=([\d.]+)")
LIVE = []  # started targets, stopped on exit


def log(msg):
    print(f"[bench {datetime.datetime.now():%H:%M:%S}] {msg}", flush=True)


def clean_env():
    """The environment for children: no CHRONIK_* variable we did not mean (chronik reads them as
    configuration and rejects unknown ones)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CHRONIK_")}


def free_ports(n):
    return chronik_cluster.free_ports(n)


def proc_cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def proc_status_kb(pid, key):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_serving(bootstrap, proc_alive, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc_alive():
            raise RuntimeError(f"{what} exited during startup")
        try:
            if kafka_wire.api_versions_ok(bootstrap, timeout=1):
                return
        except (OSError, AssertionError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not serving {bootstrap} after {timeout}s")


# --- targets ---------------------------------------------------------------------------------------
class ChronikStandalone:
    rf = 1

    def __init__(self, workdir, row):
        self.workdir, self.row = workdir, row
        self.port = free_ports(1)[0]
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        env = clean_env()
        env.update(ROW_CHRONIK_ENV[self.row])
        cmd = [str(chronik_cluster.chronik_bin()), "standalone", "--data-dir", str(self.workdir / "data"),
               "--listen", self.bootstrap, "--advertised-addr", "127.0.0.1"]
        self.logf = open(self.workdir / "chronik.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        wait_serving(self.bootstrap, lambda: self.proc.poll() is None, 60, "chronik standalone")

    def pids(self):
        return [self.proc.pid] if self.proc and self.proc.poll() is None else []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc:
            self.logf.close()


class ChronikCluster:
    rf = 3

    def __init__(self, workdir, row):
        self.workdir, self.row = workdir, row
        self.cluster = chronik_cluster.Cluster(workdir, size=3, env=ROW_CHRONIK_ENV[self.row])
        self.bootstrap = self.cluster.bootstrap

    def start(self):
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(clean_env())  # Node.start copies os.environ
        try:
            self.cluster.start(timeout=90)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def pids(self):
        return [n.proc.pid for n in self.cluster.nodes.values() if n.alive()]

    def stop(self):
        self.cluster.stop()


class KafkaBase:
    def kafka_env(self):
        env = clean_env()
        env["KAFKA_HEAP_OPTS"] = KAFKA_HEAP
        env["KAFKA_EXTRA_PROPS"] = "\n".join(KAFKA_COMMON_PROPS + ROW_KAFKA_PROPS[self.row])
        return env

    def node_dirs(self):
        raise NotImplementedError

    def pids(self):
        out = []
        for d in self.node_dirs():
            try:
                pid = int((d / "kafka.pid").read_text())
            except (OSError, ValueError):
                continue
            if Path(f"/proc/{pid}").exists():
                out.append(pid)
        return out

    def stop(self):
        """SIGTERM to every node at once, SIGKILL after 20 s (the data is thrown away anyway)."""
        pids = []
        for d in self.node_dirs():
            try:
                pid = int((d / "kafka.pid").read_text())
            except (OSError, ValueError):
                continue
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") \
                if Path(f"/proc/{pid}").exists() else b""
            if b"kafka.Kafka" in cmdline:
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
            (DEPS / "kafka-broker" / "running" / str(pid)).unlink(missing_ok=True)
            (d / "kafka.pid").unlink(missing_ok=True)
        deadline = time.monotonic() + 20
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
            time.sleep(0.2)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _zombie(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class KafkaSingle(KafkaBase):
    rf = 1

    def __init__(self, workdir, row):
        self.workdir, self.row = workdir, row
        self.port, self.cport = free_ports(2)
        self.bootstrap = f"127.0.0.1:{self.port}"

    def node_dirs(self):
        return [self.workdir / "kafka"]

    def start(self):
        env = self.kafka_env()
        env["CONTROLLER_PORT"] = str(self.cport)
        run_logged([str(REPO / "benches/kafka/start-kafka.sh"), str(self.port), str(self.workdir / "kafka")],
                   self.workdir / "start.log", timeout=150, env=env)


class KafkaCluster(KafkaBase):
    rf = 3

    def __init__(self, workdir, row):
        self.workdir, self.row = workdir, row
        self.base = pick_base_port()
        self.bootstrap = ",".join(f"127.0.0.1:{self.base + i}" for i in range(3))

    def node_dirs(self):
        return [self.workdir / "kafka" / f"node{i}" for i in (1, 2, 3)]

    def start(self):
        run_logged([str(REPO / "benches/kafka/start-kafka-cluster.sh"), str(self.base), str(self.workdir / "kafka")],
                   self.workdir / "start.log", timeout=200, env=self.kafka_env())


def pick_base_port():
    """A base port B with B..B+2 and B+10..B+12 free."""
    import socket
    for base in range(21000, 40000, 37):
        socks = []
        try:
            for p in [base, base + 1, base + 2, base + 10, base + 11, base + 12]:
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


TARGET_CLASS = {"chronik-1": ChronikStandalone, "kafka-1": KafkaSingle,
                "chronik-3": ChronikCluster, "kafka-3": KafkaCluster}


# --- tools -----------------------------------------------------------------------------------------
def run_logged(cmd, logpath, timeout, env=None):
    """Runs cmd, appending its output to logpath; returns the output; raises on failure."""
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           timeout=timeout, env=env if env is not None else clean_env())
        out, rc = r.stdout.decode("utf-8", "replace"), r.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode("utf-8", "replace") + f"\n!!! timed out after {timeout}s", -1
    with open(logpath, "a") as f:
        f.write(f"===== {' '.join(cmd)}  (exit {rc}, {time.monotonic() - t0:.1f}s)\n{out}\n")
    if rc != 0:
        raise RuntimeError(f"{cmd[0]} {' '.join(cmd[1:4])}... failed (exit {rc}); see {logpath}\n{out[-3000:]}")
    return out


def java(*args):
    return ["java", *CLIENT_JVM, "-cp", TOOLS_CP, *args]


def create_topic(bootstrap, topic, partitions, rf, timeout=120):
    """CreateTopics with confluent-kafka's AdminClient, then wait until every partition has a leader."""
    from confluent_kafka import admin as ck_admin
    a = ck_admin.AdminClient({"bootstrap.servers": bootstrap})
    fut = a.create_topics([ck_admin.NewTopic(topic, num_partitions=partitions, replication_factor=rf)],
                          request_timeout=timeout)
    fut[topic].result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = a.list_topics(topic, timeout=10)
        t = md.topics.get(topic)
        if t and t.error is None and len(t.partitions) == partitions \
                and all(p.leader >= 0 for p in t.partitions.values()):
            return
        time.sleep(0.2)
    raise RuntimeError(f"topic {topic}: not every partition has a leader after {timeout}s")


def produce(bootstrap, topic, records, logpath, throughput=-1, client_warmup=0, txn_id=None):
    """ProducerPerformance; with client_warmup > 0 the first client_warmup records (sent in addition
    to `records`, by the same JVM) are left out of the figures: its steady-state summary is used.
    With `txn_id`, a transactional producer committing every 100 ms (issue 12's row)."""
    cmd = java("org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
               "--num-records", str(records + client_warmup),
               "--record-size", "1024", "--throughput", str(throughput),
               "--command-property", "acks=all", f"bootstrap.servers={bootstrap}")
    if client_warmup > 0:
        cmd += ["--warmup-records", str(client_warmup)]
    if txn_id:
        cmd += ["--transactional-id", txn_id, "--transaction-duration-ms", "100"]
    out = run_logged(cmd, logpath, timeout=max(600, records // 200))
    m = None
    for m in PERF_RX.finditer(out):
        pass
    if not m:
        raise RuntimeError(f"no ProducerPerformance summary in {logpath}")
    g = m.groups()
    return {"records": int(g[0]), "msg_s": float(g[1]), "mb_s": float(g[2]), "avg_ms": float(g[3]),
            "max_ms": float(g[4]), "p50_ms": int(g[5]), "p95_ms": int(g[6]), "p99_ms": int(g[7]),
            "p999_ms": int(g[8])}


def consume(bootstrap, topic, records, logpath):
    out = run_logged(java("AssignConsumerPerf", bootstrap, topic, str(records), "60000"), logpath,
                     timeout=max(600, records // 200))
    m = CONSUME_RX.search(out)
    if not m:
        raise RuntimeError(f"no AssignConsumerPerf result in {logpath}")
    return {"consume_mb_s": float(m.group(4)), "consume_msg_s": float(m.group(5))}


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# --- one measurement ------------------------------------------------------------------------------
def measure(args, outdir, target, row, rep, partitions, records, consume_too=True):
    name = f"{row}-{target}-p{partitions}-r{rep}"
    workdir = Path(args.workdir) / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    logpath = outdir / "logs" / f"{name}.log"
    logpath.parent.mkdir(parents=True, exist_ok=True)
    t = TARGET_CLASS[target](workdir, row)
    LIVE.append(t)
    res = {"row": row, "target": target, "rep": rep, "partitions": partitions}
    t0 = time.monotonic()
    try:
        t.start()
        res["startup_s"] = round(time.monotonic() - t0, 1)
        if args.warmup > 0:
            create_topic(t.bootstrap, "warmup", partitions, t.rf)
            produce(t.bootstrap, "warmup", args.warmup, logpath)
        create_topic(t.bootstrap, "bench", partitions, t.rf)
        pids = t.pids()
        cpu0, ccpu0, w0 = sum(proc_cpu_seconds(p) for p in pids), children_cpu(), time.monotonic()
        txn_id = f"bench-{name}" if args.transactional else None
        res["transactional"] = bool(args.transactional)
        res.update(produce(t.bootstrap, "bench", records, logpath, args.throughput, args.client_warmup, txn_id))
        wall = time.monotonic() - w0
        res["broker_cpu_s"] = round(sum(proc_cpu_seconds(p) for p in pids) - cpu0, 2)
        res["client_cpu_s"] = round(children_cpu() - ccpu0, 2)
        res["produce_wall_s"] = round(wall, 2)
        if consume_too:
            res.update(consume(t.bootstrap, "bench", records + args.client_warmup, logpath))
        res["broker_hwm_mb"] = round(sum(proc_status_kb(p, "VmHWM") for p in pids) / 1024, 1)
        log(f"{name}: {res['msg_s']:.0f} msg/s {res['mb_s']:.1f} MB/s p50 {res['p50_ms']} p99 {res['p99_ms']} "
            f"p99.9 {res['p999_ms']} ms; consume {res.get('consume_mb_s', '-')} MB/s; broker cpu "
            f"{res['broker_cpu_s']}s client cpu {res['client_cpu_s']}s in {res['produce_wall_s']}s")
    except Exception as e:  # one failed measurement is reported, not fatal
        res["error"] = str(e).splitlines()[0][:300]
        log(f"{name}: FAILED: {e}")
    finally:
        t.stop()
        LIVE.remove(t)
        # the processes' own logs (not the data: chronik's and Kafka's segments are *.log too)
        for pattern in ("chronik.log", "node?.log", "start.log", "kafka/kafka.log", "kafka/node?/kafka.log"):
            for f in workdir.glob(pattern):
                try:
                    shutil.copy(f, outdir / "logs" / f"{name}-{f.parent.name}-{f.name}")
                except OSError:
                    pass
        shutil.rmtree(workdir, ignore_errors=True)
    return res


def rss_per_partition(args, outdir, partitions=1000):
    workdir = Path(args.workdir) / "rss"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    t = ChronikStandalone(workdir, "durable")
    LIVE.append(t)
    out = {"partitions": partitions}
    try:
        t.start()
        time.sleep(3)
        pid = t.pids()[0]
        out["rss_before_kb"] = proc_status_kb(pid, "VmRSS")
        t0 = time.monotonic()
        create_topic(t.bootstrap, "rss", partitions, 1, timeout=300)
        out["create_s"] = round(time.monotonic() - t0, 1)
        time.sleep(5)
        out["rss_after_kb"] = proc_status_kb(pid, "VmRSS")
        out["threads"] = proc_status_kb(pid, "Threads")
        # One small write to each partition (opens the segment for writing, fills its buffers).
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": t.bootstrap, "acks": "all", "linger.ms": 20})
        for i in range(partitions * 10):
            p.produce("rss", b"x" * 100, partition=i % partitions)
            if i % 1000 == 0:
                p.poll(0)
        left = p.flush(120)
        del p
        time.sleep(3)
        out["unflushed"] = left
        out["rss_written_kb"] = proc_status_kb(pid, "VmRSS")
        idle_cpu0 = proc_cpu_seconds(pid)
        time.sleep(10)
        out["idle_cpu_pct"] = round((proc_cpu_seconds(pid) - idle_cpu0) / 10 * 100, 1)
        out["kb_per_partition"] = round((out["rss_after_kb"] - out["rss_before_kb"]) / partitions, 1)
        out["kb_per_partition_written"] = round((out["rss_written_kb"] - out["rss_before_kb"]) / partitions, 1)
        log(f"rss: {out}")
    except Exception as e:
        out["error"] = str(e).splitlines()[0][:300]
        log(f"rss: FAILED: {e}")
    finally:
        t.stop()
        LIVE.remove(t)
        shutil.copy(workdir / "chronik.log", outdir / "logs" / "rss-chronik.log")
        shutil.rmtree(workdir, ignore_errors=True)
    return out


# --- reporting -------------------------------------------------------------------------------------
METRICS = ("msg_s", "mb_s", "p50_ms", "p99_ms", "p999_ms", "consume_mb_s", "broker_cpu_s")


def median_of(runs, key):
    vals = [r[key] for r in runs if key in r and "error" not in r]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}x"


def summarize(runs, args):
    """Medians per (row, target) and the chronik/Kafka ratios; returns (markdown, csv rows)."""
    lines = ["| durability | target | produce msg/s | produce MB/s | p50 ms | p99 ms | p99.9 ms | "
             "consume MB/s | broker CPU s | runs |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    csv_rows = []
    for row in args.rows:
        med = {}
        for target in args.targets:
            rs = [r for r in runs if r["row"] == row and r["target"] == target and r["partitions"] == args.partitions]
            ok = [r for r in rs if "error" not in r]
            med[target] = {k: median_of(ok, k) for k in METRICS}
            m = med[target]
            lines.append(f"| {row} | {LABEL[target]} | {fmt(m['msg_s'])} | {fmt(m['mb_s'], 1)} | "
                         f"{fmt(m['p50_ms'])} | {fmt(m['p99_ms'])} | {fmt(m['p999_ms'])} | "
                         f"{fmt(m['consume_mb_s'], 1)} | {fmt(m['broker_cpu_s'], 1)} | {len(ok)}/{len(rs)} |")
            csv_rows.append({"row": row, "target": target, "kind": "median", "ok_runs": len(ok), **m})
        for n in ("1", "3"):
            c, k = med.get(f"chronik-{n}"), med.get(f"kafka-{n}")
            if c is None or k is None:
                continue
            r = {key: ratio(c[key], k[key]) for key in METRICS}
            lines.append(f"| {row} | **chronik/Kafka, {n} node{'s' if n == '3' else ''}** | "
                         f"**{fmt_ratio(r['msg_s'])}** | {fmt_ratio(r['mb_s'])} | {fmt_ratio(r['p50_ms'])} | "
                         f"**{fmt_ratio(r['p99_ms'])}** | {fmt_ratio(r['p999_ms'])} | "
                         f"{fmt_ratio(r['consume_mb_s'])} | {fmt_ratio(r['broker_cpu_s'])} | |")
            csv_rows.append({"row": row, "target": f"chronik/kafka-{n}", "kind": "ratio", **r})
    return "\n".join(lines), csv_rows


def scale_table(scale_runs):
    lines = ["| nodes | partitions | chronik msg/s | Kafka msg/s | chronik/Kafka | chronik p99 ms | Kafka p99 ms | "
             "chronik broker CPU s | Kafka broker CPU s |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    cells = sorted({(r["target"].rsplit("-", 1)[1], r["partitions"]) for r in scale_runs})
    for n, p in cells:
        c = [r for r in scale_runs if r["partitions"] == p and r["target"] == f"chronik-{n}"]
        k = [r for r in scale_runs if r["partitions"] == p and r["target"] == f"kafka-{n}"]
        cm, km = median_of(c, "msg_s"), median_of(k, "msg_s")
        lines.append(f"| {n} | {p} | {fmt(cm)} | {fmt(km)} | {fmt_ratio(ratio(cm, km))} | "
                     f"{fmt(median_of(c, 'p99_ms'))} | "
                     f"{fmt(median_of(k, 'p99_ms'))} | {fmt(median_of(c, 'broker_cpu_s'), 1)} | "
                     f"{fmt(median_of(k, 'broker_cpu_s'), 1)} |")
    return "\n".join(lines)


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=30).stdout.decode("utf-8", "replace").strip()
    except subprocess.TimeoutExpired:
        return "(timed out)"


def fsync_probe(dirpath, n=200):
    """Average latency of write(16 KB) + fdatasync on the benchmark disk."""
    p = Path(dirpath) / ".fsync-probe"
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC)
    try:
        t0 = time.monotonic()
        for _ in range(n):
            os.write(fd, b"x" * 16384)
            os.fdatasync(fd)
        return (time.monotonic() - t0) / n * 1000
    finally:
        os.close(fd)
        p.unlink()


def machine(args):
    return "\n".join([
        "```",
        f"$ nproc\n{sh('nproc')}",
        f"$ free -h\n{sh('free -h')}",
        f"$ lscpu | head -n 15\n{sh('lscpu | head -n 15')}",
        f"$ df -h {args.workdir}\n{sh(f'df -h {args.workdir}')}",
        f"$ uname -sr\n{platform.system()} {platform.release()}",
        f"$ java -version\n{sh('java -version 2>&1 | head -1')}",
        f"write(16 KB) + fdatasync on the benchmark disk: {fsync_probe(args.workdir):.2f} ms average of 200",
        "```",
    ])


def write_csv(path, rows):
    if not rows:
        return
    keys = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()})


def report(args, outdir, runs, scale_runs, rss, started, machine_text, load_before):
    table, summary_rows = summarize(runs, args)
    write_csv(outdir / "runs.csv", runs)
    write_csv(outdir / "summary.csv", summary_rows)
    write_csv(outdir / "scale.csv", scale_runs)
    elapsed = time.monotonic() - started
    rev = sh(f"git -C {REPO} rev-parse --short HEAD")
    md = [
        f"Run of {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, chronik {rev}, "
        f"Apache Kafka {args.kafka_version}, {elapsed / 60:.1f} minutes. Command: `{args.command}`",
        "",
        f"Records of 1 KB per measurement: {args.records:,} (durable row), {args.pagecache_records:,} (page-cache "
        f"row); acks=all, idempotent producer (the default), "
        f"{args.partitions} partitions, producer rate "
        f"{'unlimited' if args.throughput < 0 else f'{args.throughput:,} msg/s'}, "
        f"{args.warmup:,} warm-up records first"
        f"{f' and {args.client_warmup:,} in the measuring client (steady state reported)' if args.client_warmup else ''}; medians of {args.reps} "
        f"runs per target, targets alternating. Ratios are chronik / Kafka: above 1 is better for "
        f"throughput, below 1 is better for latency and CPU. Load average before the run: {load_before}; "
        f"after: {os.getloadavg()[0]:.2f}.",
        "",
        table,
        "",
    ]
    if scale_runs:
        nodes = " and ".join(str(n) for n in args.scale_nodes)
        md += [f"### Scale curve ({args.scale_row}, {args.scale_records:,} records, {nodes} node(s), "
               f"median of {args.scale_reps})", "", scale_table(scale_runs), ""]
    if rss:
        if "error" in rss:
            md += [f"### RSS with {rss['partitions']} partitions (chronik standalone)", "",
                   f"failed: {rss['error']}", ""]
        else:
            md += [f"### RSS with {rss['partitions']} partitions (chronik standalone)", "",
                   "| VmRSS before | after creating them | after 10 records to each | per partition (created) | "
                   "per partition (written) | create time | idle CPU |",
                   "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
                   f"| {rss['rss_before_kb'] / 1024:.1f} MB | {rss['rss_after_kb'] / 1024:.1f} MB | "
                   f"{rss['rss_written_kb'] / 1024:.1f} MB | {rss['kb_per_partition']} KB | "
                   f"{rss['kb_per_partition_written']} KB | {rss['create_s']} s | {rss['idle_cpu_pct']}% |", ""]
    failed = [r for r in runs + scale_runs if "error" in r]
    if failed:
        md += ["Failed measurements:", ""] + [f"- {r['row']} {r['target']} p{r['partitions']} rep {r['rep']}: "
                                             f"{r['error']}" for r in failed] + [""]
    md += ["### Machine", "", machine_text, ""]
    text = "\n".join(md)
    (outdir / "report.md").write_text(text)
    print("\n" + text, flush=True)
    try:
        import charts  # benches/throughput/charts.py: SVG charts of summary.csv and scale.csv
        charts.draw(outdir)
    except ImportError as e:
        log(f"!!!! no charts drawn ({e}): run.sh installs matplotlib into .deps/venv")
    if not args.no_docs:
        doc = REPO / "docs" / "benchmarks.md"
        begin, end = "<!-- results:begin -->", "<!-- results:end -->"
        cur = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{begin}\n{end}\n"
        if begin in cur and end in cur:
            head, rest = cur.split(begin, 1)
            _, tail = rest.split(end, 1)
            doc.write_text(f"{head}{begin}\n{text}\n{end}{tail}")
            log(f"updated {doc}")
        # The CSVs and charts the doc shows, beside it.
        for name in ("summary.csv", "runs.csv", "scale.csv"):
            if (outdir / name).exists():
                shutil.copy(outdir / name, REPO / "docs" / "benchmarks" / f"latest-{name}")
        for svg in outdir.glob("*.svg"):
            shutil.copy(svg, REPO / "docs" / "benchmarks" / svg.name)


def records_for(args, row):
    return args.pagecache_records if row == "pagecache" else args.records


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000,
                    help="records per measurement in the durable row (default 200000)")
    ap.add_argument("--pagecache-records", type=int, default=1_000_000,
                    help="records per measurement in the page-cache row (default 1000000): at 100+ MB/s a "
                         "shorter run mostly measures the client JVM warming up")
    ap.add_argument("--warmup", type=int, default=20_000, help="warm-up records before each measurement")
    ap.add_argument("--reps", type=int, default=3, help="measurements per target and row (default 3)")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--client-warmup", type=int, default=0,
                    help="ProducerPerformance --warmup-records: this many extra records first, in the "
                         "measuring JVM, left out of the figures (steady state). Default 0")
    ap.add_argument("--throughput", type=int, default=-1,
                    help="ProducerPerformance --throughput: -1 (default) is as fast as possible; a fixed "
                         "rate below every target's capacity measures latency without queueing")
    ap.add_argument("--transactional", action="store_true",
                    help="the measured producer is transactional (--transaction-duration-ms 100): issue 12's "
                         "row; the consumer reads read_uncommitted as before")
    ap.add_argument("--rows", default=",".join(ROWS), help="durable,pagecache")
    ap.add_argument("--targets", default=",".join(TARGETS), help="chronik-1,kafka-1,chronik-3,kafka-3")
    ap.add_argument("--scale", default="1,6,24,96", help="partition counts of the scale curve ('' to skip)")
    ap.add_argument("--scale-row", default="pagecache", choices=ROWS)
    ap.add_argument("--scale-records", type=int, default=None, help="default: --records")
    ap.add_argument("--scale-reps", type=int, default=1)
    ap.add_argument("--scale-nodes", default="1",
                    help="cluster sizes of the scale curve: 1 (default), 3 or 1,3 (RF = the cluster size)")
    ap.add_argument("--rss-partitions", type=int, default=1000, help="0 to skip the RSS measurement")
    ap.add_argument("--workdir", default=str(REPO / ".deps" / "bench-work"),
                    help="data directories (on the disk being measured; not tmpfs)")
    ap.add_argument("--out", default=str(REPO / "benches" / "throughput" / "results"))
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--kafka-version", default=os.environ.get("KAFKA_VERSION", "4.4.0"))
    args = ap.parse_args()
    args.rows = [r for r in args.rows.split(",") if r]
    args.targets = [t for t in args.targets.split(",") if t]
    args.scale_records = args.scale_records or records_for(args, args.scale_row) // 2
    args.scale_nodes = [int(n) for n in args.scale_nodes.split(",") if n.strip()]
    for n in args.scale_nodes:
        assert n in (1, 3), f"--scale-nodes: {n} (1 or 3)"
    args.command = os.environ.get("BENCH_COMMAND", "python3 benches/throughput/bench.py " + " ".join(sys.argv[1:]))
    for r in args.rows:
        assert r in ROWS, r
    for t in args.targets:
        assert t in TARGETS, t

    started = time.monotonic()
    load_before = f"{os.getloadavg()[0]:.2f}"
    outdir = Path(args.out) / datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (outdir / "logs").mkdir(parents=True)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    machine_text = machine(args)
    log(f"results in {outdir}")

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)

    runs, scale_runs, rss = [], [], None
    try:
        for rep in range(1, args.reps + 1):
            for row in args.rows:
                for target in args.targets:
                    runs.append(measure(args, outdir, target, row, rep, args.partitions, records_for(args, row)))
        scale = [int(p) for p in args.scale.split(",") if p.strip()]
        for rep in range(1, args.scale_reps + 1):
            for p, n in [(p, n) for n in args.scale_nodes for p in scale]:
                for target in (f"chronik-{n}", f"kafka-{n}"):
                    scale_runs.append(measure(args, outdir, target, args.scale_row, rep, p, args.scale_records,
                                              consume_too=False))
        if args.rss_partitions > 0:
            rss = rss_per_partition(args, outdir, args.rss_partitions)
    finally:
        for t in list(LIVE):
            t.stop()
    report(args, outdir, runs, scale_runs, rss, started, machine_text, load_before)


if __name__ == "__main__":
    main()
