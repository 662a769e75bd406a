"""Helpers shared by the interop tests: running the Java Kafka tools and kcat with bounded timeouts,
unique topic names, topic creation and high-watermark queries.

A missing tool is a test FAILURE (pytest.fail), never a skip: install everything with
scripts/install-test-deps.sh.
"""
import importlib
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPS = REPO / ".deps"
TOOLS_LIB = DEPS / "kafka-tools" / "lib"
INSTALL_HINT = "install it with scripts/install-test-deps.sh"

TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand"
CONFIG_COMMAND = "org.apache.kafka.tools.ConfigCommand"
ACL_COMMAND = "org.apache.kafka.tools.AclCommand"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
PRODUCER_PERFORMANCE = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_PERFORMANCE = "org.apache.kafka.tools.ConsumerPerformance"

# Flags for every Java tool JVM: small heap, one GC thread, clients' own logging at WARN.
JAVA_OPTS = ["-Xmx512m", "-XX:+UseSerialGC", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]


MEASUREMENTS = []  # lines printed in the run's closing summary (conftest.pytest_terminal_summary)


PERF_LINE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)")


def perf_produce(bootstrap, topic, mb, size=1024, timeout=3600):
    """ProducerPerformance (acks=all, `size`-byte records, as fast as it can) sending `mb` MB to
    `topic`: its MB/s (the benchmarks' producer)."""
    n = int(mb * 1024 * 1024 / size)
    cmd = ["java", *JAVA_OPTS, "-cp", f"{TOOLS_LIB}/*", PRODUCER_PERFORMANCE, "--topic", topic,
           "--num-records", str(n), "--record-size", str(size), "--throughput", "-1",
           "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    m = [x for x in PERF_LINE.finditer(p.stdout) if int(x.group(1)) == n]
    if p.returncode != 0 or not m:
        raise SystemExit(f"ProducerPerformance failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return float(m[-1].group(3))


def report(line):
    """Print a measurement now (visible with -s) and again in the summary at the end of the run."""
    print(line)
    MEASUREMENTS.append(line)


def unique_topic(prefix="t"):
    """A topic name no other test (or earlier run against the same external broker) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def need_module(name):
    """Import a Python client library or FAIL the test saying how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        pytest.fail(f"Python module {name!r} is missing ({e}); {INSTALL_HINT} and run pytest "
                    f"with .deps/venv/bin/python", pytrace=False)


class Result:
    """Outcome of a tool run: returncode, raw stdout/stderr bytes and decoded .out/.err text."""

    def __init__(self, cmd, returncode, stdout, stderr, seconds):
        self.cmd, self.returncode, self.stdout, self.stderr = cmd, returncode, stdout, stderr
        self.out = stdout.decode("utf-8", "replace")
        self.err = stderr.decode("utf-8", "replace")
        self.seconds = seconds

    def describe(self, limit=4000):
        return (f"command: {' '.join(self.cmd)}\nexit code: {self.returncode} after {self.seconds:.1f}s\n"
                f"--- stdout (tail) ---\n{self.out[-limit:]}\n--- stderr (tail) ---\n{self.err[-limit:]}")


def run(cmd, input=None, timeout=60, check=True, env=None):
    """Run a command with a hard timeout (the child is killed when it expires: a test failure)."""
    if isinstance(input, str):
        input = input.encode()
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout,
                           env=env, stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        r = Result(cmd, None, e.stdout or b"", e.stderr or b"", time.monotonic() - t0)
        pytest.fail(f"timed out after {timeout}s (killed)\n{r.describe()}", pytrace=False)
    r = Result(cmd, p.returncode, p.stdout, p.stderr, time.monotonic() - t0)
    if check and p.returncode != 0:
        pytest.fail(f"command failed\n{r.describe()}", pytrace=False)
    return r


def java_tool(cls, *args, input=None, timeout=120, check=True):
    """Run one of the Apache Kafka Java tools (a class from .deps/kafka-tools/lib)."""
    java = shutil.which("java")
    if not java:
        pytest.fail(f"`java` is not on PATH; {INSTALL_HINT}", pytrace=False)
    if not list(TOOLS_LIB.glob("kafka-tools-*.jar")):
        pytest.fail(f"Kafka Java tools missing from {TOOLS_LIB}; {INSTALL_HINT}", pytrace=False)
    cmd = [java, *JAVA_OPTS, "-cp", f"{TOOLS_LIB}/*", cls, *map(str, args)]
    return run(cmd, input=input, timeout=timeout, check=check)


def kcat(*args, input=None, timeout=60, check=True):
    """Run kcat (Debian package, librdkafka 2.0.x)."""
    exe = shutil.which("kcat")
    if not exe:
        pytest.fail(f"`kcat` is not on PATH; {INSTALL_HINT}", pytrace=False)
    return run([exe, *map(str, args)], input=input, timeout=timeout, check=check)


def high_watermark(bootstrap, topic, partition=0, timeout=30):
    """The partition's end offset, via `kcat -Q` (ListOffsets; no consumer group involved)."""
    r = kcat("-b", bootstrap, "-Q", "-t", f"{topic}:{partition}:-1", timeout=timeout)
    m = re.search(rf"^{re.escape(topic)} \[{partition}\] offset (-?\d+)\s*$", r.out, re.M)
    assert m, f"could not parse kcat -Q output\n{r.describe()}"
    return int(m.group(1))


def wait_topic_ready(bootstrap, topic, partitions, timeout=30):
    """Poll Metadata (confluent-kafka AdminClient) until `topic` has `partitions` partitions, each with
    a leader. Returns the TopicMetadata."""
    ck_admin = need_module("confluent_kafka.admin")
    admin = ck_admin.AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            md = admin.list_topics(topic=topic, timeout=5)
            tm = md.topics.get(topic)
            last = tm
            if (tm is not None and tm.error is None and len(tm.partitions) == partitions
                    and all(p.leader >= 0 and p.error is None for p in tm.partitions.values())):
                return tm
        except Exception as e:  # a transient metadata error: retry until the deadline
            last = e
        time.sleep(0.2)
    pytest.fail(f"topic {topic} not ready with {partitions} partitions after {timeout}s: {last!r}",
                pytrace=False)


def create_topic(bootstrap, topic, partitions=1, config=None, timeout=30):
    """CreateTopics via confluent-kafka's AdminClient, then wait until every partition has a leader."""
    ck_admin = need_module("confluent_kafka.admin")
    admin = ck_admin.AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [ck_admin.NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})],
        request_timeout=timeout, operation_timeout=timeout)
    futures[topic].result(timeout=timeout)
    return wait_topic_ready(bootstrap, topic, partitions, timeout=timeout)


def env_with(**kv):
    env = dict(os.environ)
    env.update({k: str(v) for k, v in kv.items()})
    return env


class LoggedProcess:
    """A long-running Java program started by a test (a Connect worker, a Streams app), its output
    in a log file. Subclasses set `what` (how failures name it) and `tail` (log chars shown)."""

    what = "process"
    tail = 4000
    stop_timeout = 60

    def __init__(self, cmd, log_path):
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def text(self):
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout=None):
        """SIGTERM, and a failure if it does not exit within `timeout` (it is then killed)."""
        timeout = self.stop_timeout if timeout is None else timeout
        try:
            if not self.terminate(timeout):
                raise AssertionError(self.hang_report(timeout, self.dump_and_kill()))
        finally:
            self.log.close()

    def terminate(self, timeout):
        """SIGTERM; whether the process exited within `timeout`."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def dump_and_kill(self):
        """SIGQUIT (a JVM prints every thread's stack: what the stop waits for), then SIGKILL;
        returns the log with the dump."""
        self.proc.send_signal(signal.SIGQUIT)
        time.sleep(2)
        self.proc.kill()
        self.proc.wait(timeout=10)
        return self.text()

    def hang_report(self, timeout, text):
        dump = text.find("Full thread dump")
        stacks = text[dump:dump + 40000] if dump >= 0 else "(no thread dump)"
        return (f"{self.what} did not stop within {timeout}s of SIGTERM:\n"
                f"{text[:dump][-self.tail:] if dump >= 0 else text[-self.tail:]}\n{stacks}")


def thread_stack(text, name):
    """The stack of thread `name` in the last JVM thread dump of `text` ('' if it is not there)."""
    dump = text.rfind("Full thread dump")
    if dump < 0:
        return ""
    start = text.find(f'"{name}"', dump)
    if start < 0:
        return ""
    end = text.find('\n"', start + 1)
    return text[start:end if end >= 0 else len(text)]


# --- security: certificates, client settings and a broker started from a config file ----------------
def openssl(cwd, *args):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()


def make_pki(d):
    """In `d`: a CA, a server certificate for 127.0.0.1/localhost, a client certificate and an
    expired one (made at run time, never committed keys)."""
    openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=chronik-test-ca",
            "-keyout", "ca-key.pem", "-out", "ca.pem")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, subj in [("server", "/CN=localhost"), ("client", "/O=Acme/CN=client1")]:
        openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-subj", subj, "-keyout", f"{name}-key.pem",
                "-out", f"{name}.csr")
        openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", f"{name}.pem")
    # Expired: `-days -1` puts notAfter a day before notBefore (now), so it has expired.
    openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=expired", "-keyout", "expired-key.pem",
            "-out", "expired.csr")
    openssl(d, "x509", "-req", "-in", "expired.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-days", "-1", "-out", "expired.pem")


def make_node_certs(d, n):
    """In `d`: a CA (`ca.pem`) and the peer certificates `node-1.pem`..`node-n.pem` (keys
    `node-N-key.pem`) with CN and DNS SAN `node-N`, as `raft.tls-*` wants them."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(d, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=chronik-test-ca", "-keyout", "ca-key.pem",
            "-out", "ca.pem")
    for i in range(1, n + 1):
        name = f"node-{i}"
        (d / f"{name}.ext").write_text(f"subjectAltName=DNS:{name}\n")
        openssl(d, "req", *ec, "-subj", f"/CN={name}", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr")
        openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")


def java_client_props(path, listener, mech=None, user=None, password=None, ca=None):
    """A Java client properties file (--command-config, --consumer.config, --producer.config)."""
    lines = [f"security.protocol={listener}"]
    if "SSL" in listener:
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={ca}"]
    if mech:
        module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mech == "PLAIN"
                  else "org.apache.kafka.common.security.scram.ScramLoginModule")
        lines += [f"sasl.mechanism={mech}",
                  f'sasl.jaas.config={module} required username="{user}" password="{password}";']
    path.write_text("\n".join(lines) + "\n")
    return path


def librdkafka_security(listener, mech=None, user=None, password=None, ca=None):
    """librdkafka (kcat, confluent-kafka) settings for a listener."""
    conf = {"security.protocol": listener}
    if "SSL" in listener:
        conf["ssl.ca.location"] = str(ca)
    if mech:
        conf.update({"sasl.mechanisms": mech, "sasl.username": user, "sasl.password": password})
    return conf


class SecureBroker:
    """A chronik standalone started with `--config <d>/chronik.toml`: `ports` maps listener names
    (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) to free ports, `toml` is the rest of the file (it
    may add keys to `[kafka]`, which the file opens with). Ready once ApiVersions (allowed before
    SASL authentication) answers on the first listener of `ports`."""

    def __init__(self, d, ports, toml):
        self.dir = d
        self.ports = dict(ports)
        self.log_path = d / "broker.log"
        listeners = ", ".join(f'"{n}://127.0.0.1:{p}"' for n, p in self.ports.items())
        (d / "chronik.toml").write_text(f"[kafka]\nlisteners = [{listeners}]\n{toml}")
        # Runs in the child before exec (e.g. resource.setrlimit for a small fd limit).
        self.preexec_fn = None

    def bootstrap(self, name):
        return f"127.0.0.1:{self.ports[name]}"

    def start(self, timeout=None):
        """Starts the broker and waits (bounded: `timeout`, else START_TIMEOUT) until it serves."""
        import kafka_wire
        from conftest import HARNESS_ENV, START_TIMEOUT, _LIVE, chronik_bin
        cmd = [str(chronik_bin()), "standalone", "--config", str(self.dir / "chronik.toml"),
               "--data-dir", str(self.dir / "data")]
        env = {k: v for k, v in os.environ.items() if k not in HARNESS_ENV}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                         preexec_fn=self.preexec_fn)
        _LIVE.add(self.proc)
        first = next(iter(self.ports))
        deadline = time.monotonic() + (timeout or START_TIMEOUT)
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"chronik exited\n{self.log_text()[-4000:]}"
            try:
                if kafka_wire.api_versions_ok(self.bootstrap(first), timeout=2):
                    return
            except (OSError, AssertionError, ValueError):
                pass
            time.sleep(0.05)
        pytest.fail(f"chronik not ready after {timeout or START_TIMEOUT} s\n{self.log_text()[-4000:]}", pytrace=False)

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        from conftest import _LIVE
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        _LIVE.discard(self.proc)
