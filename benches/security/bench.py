#!/usr/bin/env python3
"""The security row (issue 13): what TLS + SASL cost. Produce and consume throughput over SASL_SSL
(SCRAM-SHA-512) against PLAINTEXT, on chronik and on Apache Kafka 4.4, in one run. Started by
benches/security/run.sh, which installs the dependencies and builds chronik first.

Each target (chronik standalone, Kafka KRaft single node, page-cache settings of
benches/throughput: chronik storage.fsync=interval, Kafka's default flushing, no authorizer on
either) serves two listeners at once: PLAINTEXT and SASL_SSL with SCRAM-SHA-512 (server
certificate for 127.0.0.1 from a throw-away CA made with openssl; Kafka's through
benches/kafka/start-kafka.sh SASL_SSL_PORT). The SCRAM user is created on both with kafka-configs
(Java ConfigCommand, AlterUserScramCredentials) over PLAINTEXT. Then, --reps times, alternating
the two listeners, each in a fresh one-partition topic:

  produce  org.apache.kafka.tools.ProducerPerformance, --records of --record-size bytes, acks=all,
           unthrottled, client settings by --command-config (PLAINTEXT or SASL_SSL + SCRAM);
  consume  org.apache.kafka.tools.ConsumerPerformance of the same records, same client settings;
           its fetch.MB.sec (the group join is left out).

The figures are medians over the reps. The ratios are from the same run: SASL_SSL / PLAINTEXT per
target ("the TLS cost stays within Kafka's" when chronik's ratio is at least Kafka's) and
chronik / Kafka per listener. Outputs: benches/security/results/<UTC time>/{runs.csv,report.md}
and the logs. Nothing here asserts a speed.
"""
import argparse
import csv
import datetime
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benches" / "throughput"))
import bench as tp  # noqa: E402  (ports, process and Kafka-target helpers of the throughput benchmark)
from helpers import java_client_props, make_pki  # noqa: E402  (tests/interop/helpers.py, on tp's path)

USER, PASSWORD = "bench", "bench-" + uuid.uuid4().hex[:12]
KEYSTORE_PASSWORD = "bench-keystore-" + uuid.uuid4().hex[:8]
MECH = "SCRAM-SHA-512"
PROTOCOLS = ("PLAINTEXT", "SASL_SSL")
ROW = "pagecache"
# ConsumerPerformance's line: start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg,
# nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
CONSUMER_PERF_RX = re.compile(r"^[^,]+, [^,]+, ([\d.]+), ([\d.]+), (\d+), ([\d.]+), (-?\d+), (-?\d+), ([\d.]+), ([\d.]+)$",
                              re.M)


class Chronik(tp.ChronikStandalone):
    name = "chronik"

    def __init__(self, workdir, certs):
        self.workdir, self.certs = workdir, certs
        self.ports = dict(zip(PROTOCOLS, tp.free_ports(2)))
        self.proc = None

    def addr(self, protocol):
        return f"127.0.0.1:{self.ports[protocol]}"

    def start(self):
        conf = self.workdir / "chronik.toml"
        listeners = ", ".join(f'"{p}://127.0.0.1:{port}"' for p, port in self.ports.items())
        conf.write_text(f"""[kafka]
listeners = [{listeners}]
[tls]
cert-file = "{self.certs}/server.pem"
key-file = "{self.certs}/server-key.pem"
[sasl]
enabled-mechanisms = ["{MECH}"]
[admin]
listen = "127.0.0.1:0"
""")
        env = tp.clean_env()
        env.update(tp.ROW_CHRONIK_ENV[ROW])
        cmd = [str(tp.chronik_cluster.chronik_bin()), "standalone", "--config", str(conf),
               "--data-dir", str(self.workdir / "data")]
        self.logf = open(self.workdir / "chronik.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        tp.wait_serving(self.addr("PLAINTEXT"), lambda: self.proc.poll() is None, 60, "chronik")


class Kafka(tp.KafkaSingle):
    name = "kafka"

    def __init__(self, workdir, certs):
        super().__init__(workdir, ROW)
        self.certs = certs
        self.ports = {"PLAINTEXT": self.port, "SASL_SSL": tp.free_ports(1)[0]}

    def addr(self, protocol):
        return f"127.0.0.1:{self.ports[protocol]}"

    def kafka_env(self):
        env = super().kafka_env()
        env.update({"SASL_SSL_PORT": str(self.ports["SASL_SSL"]), "SSL_KEYSTORE": str(self.certs / "server.p12"),
                    "SSL_KEYSTORE_PASSWORD": KEYSTORE_PASSWORD})
        return env


def client_props(workdir, certs, protocol):
    path = workdir / f"{protocol.lower()}.properties"
    if protocol == "PLAINTEXT":
        path.write_text("security.protocol=PLAINTEXT\n")
        return path
    return java_client_props(path, protocol, MECH, USER, PASSWORD, ca=certs / "ca.pem")


def produce(bootstrap, props, topic, args, logpath):
    out = tp.run_logged(tp.java("org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
                                "--num-records", str(args.records), "--record-size", str(args.record_size),
                                "--throughput", "-1", "--command-config", str(props),
                                "--command-property", "acks=all", f"bootstrap.servers={bootstrap}"),
                        logpath, timeout=max(600, args.records // 200))
    m = None
    for m in tp.PERF_RX.finditer(out):
        pass
    if not m or int(m.group(1)) != args.records:
        raise RuntimeError(f"no ProducerPerformance summary for {args.records} records in {logpath}")
    return {"produce_mb_s": float(m.group(3)), "produce_msg_s": float(m.group(2)), "produce_p99_ms": int(m.group(8))}


def consume(bootstrap, props, topic, args, logpath):
    out = tp.run_logged(tp.java("org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", bootstrap,
                                "--topic", topic, "--num-records", str(args.records), "--command-config", str(props),
                                "--timeout", "60000", "--hide-header"),
                        logpath, timeout=max(600, args.records // 200))
    m = None
    for m in CONSUMER_PERF_RX.finditer(out):
        pass
    if not m or int(m.group(3)) != args.records:
        raise RuntimeError(f"ConsumerPerformance did not read {args.records} records; see {logpath}")
    return {"consume_mb_s": float(m.group(7)), "consume_msg_s": float(m.group(8)),
            "consume_with_join_mb_s": float(m.group(2))}


def run_target(cls, args, outdir, certs):
    workdir = Path(args.workdir) / cls.name
    workdir.mkdir(parents=True)
    target = cls(workdir, certs)
    rows = []
    tp.log(f"{cls.name}: starting")
    target.start()
    try:
        tp.run_logged(tp.java("org.apache.kafka.tools.ConfigCommand", "--bootstrap-server",
                              target.addr("PLAINTEXT"), "--alter", "--add-config",
                              f"{MECH}=[password={PASSWORD}]", "--entity-type", "users", "--entity-name", USER),
                      outdir / f"{cls.name}-setup.log", timeout=120)
        time.sleep(1)  # Kafka applies the credential from its metadata log
        props = {p: client_props(workdir, certs, p) for p in PROTOCOLS}
        for rep in range(args.reps):
            for protocol in (PROTOCOLS if rep % 2 == 0 else PROTOCOLS[::-1]):
                topic = f"sec-{protocol.lower()}-{rep}"
                tp.create_topic(target.addr("PLAINTEXT"), topic, 1, 1)
                logpath = outdir / f"{cls.name}-{protocol}-r{rep}.log"
                row = {"target": cls.name, "protocol": protocol, "rep": rep}
                row.update(produce(target.addr(protocol), props[protocol], topic, args, logpath))
                row.update(consume(target.addr(protocol), props[protocol], topic, args, logpath))
                tp.log(f"{cls.name} {protocol} rep {rep}: produce {row['produce_mb_s']} MB/s, "
                       f"consume {row['consume_mb_s']} MB/s")
                rows.append(row)
    finally:
        target.stop()
    return rows


def med(rows, target, protocol, key):
    vals = [r[key] for r in rows if r["target"] == target and r["protocol"] == protocol]
    return statistics.median(vals) if vals else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=300_000)
    ap.add_argument("--record-size", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--targets", default="chronik,kafka")
    ap.add_argument("--workdir", default=None, help="data directories (default: under the results directory)")
    args = ap.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)
    outdir = REPO / "benches" / "security" / "results" / started.strftime("%Y%m%dT%H%M%SZ")
    outdir.mkdir(parents=True)
    args.workdir = args.workdir or str(outdir / "work")
    certs = outdir / "certs"
    certs.mkdir()
    make_pki(certs)
    subprocess.run(["openssl", "pkcs12", "-export", "-in", "server.pem", "-inkey", "server-key.pem",
                    "-out", "server.p12", "-name", "server", "-passout", f"pass:{KEYSTORE_PASSWORD}"],
                   cwd=certs, check=True, capture_output=True, timeout=60)
    classes = {"chronik": Chronik, "kafka": Kafka}
    rows = []
    for name in args.targets.split(","):
        rows += run_target(classes[name], args, outdir, certs)
    with open(outdir / "runs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    def fmt(v):
        return "-" if v is None else f"{v:.1f}"

    def ratio(a, b):
        return "-" if a is None or not b else f"{a / b:.2f}"

    md = [f"## Security: SASL_SSL against PLAINTEXT ({started:%Y-%m-%d %H:%M} UTC)", "",
          f"`{os.environ.get('BENCH_COMMAND', 'python3 benches/security/bench.py')}`: {args.records:,} records of "
          f"{args.record_size} B, one partition, acks=all, ProducerPerformance / ConsumerPerformance (fetch MB/s), "
          f"median of {args.reps}; SASL_SSL is TLS + SCRAM-SHA-512; page-cache settings, no authorizer.", "",
          "| target | listener | produce MB/s | consume MB/s |", "| --- | --- | --- | --- |"]
    names = args.targets.split(",")
    for name in names:
        for p in PROTOCOLS:
            md.append(f"| {name} | {p} | {fmt(med(rows, name, p, 'produce_mb_s'))} | "
                      f"{fmt(med(rows, name, p, 'consume_mb_s'))} |")
    md += ["", "| ratio | produce | consume |", "| --- | --- | --- |"]
    for name in names:
        md.append(f"| {name} SASL_SSL / PLAINTEXT | "
                  f"{ratio(med(rows, name, 'SASL_SSL', 'produce_mb_s'), med(rows, name, 'PLAINTEXT', 'produce_mb_s'))} | "
                  f"{ratio(med(rows, name, 'SASL_SSL', 'consume_mb_s'), med(rows, name, 'PLAINTEXT', 'consume_mb_s'))} |")
    if set(names) >= {"chronik", "kafka"}:
        for p in PROTOCOLS:
            md.append(f"| chronik / Kafka, {p} | "
                      f"{ratio(med(rows, 'chronik', p, 'produce_mb_s'), med(rows, 'kafka', p, 'produce_mb_s'))} | "
                      f"{ratio(med(rows, 'chronik', p, 'consume_mb_s'), med(rows, 'kafka', p, 'consume_mb_s'))} |")
    (outdir / "report.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
