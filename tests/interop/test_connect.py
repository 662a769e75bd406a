"""Kafka Connect in distributed mode (the real connect-runtime and connect-file jars from Maven
Central, 4.3.1: see scripts/install-test-deps.sh for why not 4.4.0) on the broker.

One ConnectDistributed worker creates its config, offset and status topics itself
(cleanup.policy=compact). A FileStreamSource connector reads a file into a topic and a
FileStreamSink writes the topic out to another file: the sink file gets every line. The worker is
stopped (SIGTERM) and started again, lines are appended to the source file, and the connectors
resume from their stored offsets (source offsets in the offset topic, the sink's committed group
offsets): the sink file holds every line exactly once, in order.
"""
import json
import shutil
import time
import urllib.error
import urllib.request

from helpers import DEPS, JAVA_OPTS, LoggedProcess, need_module, thread_stack, unique_topic
from conftest import free_port

CONNECT_LIB = DEPS / "connect" / "lib"
WORKER = "org.apache.kafka.connect.cli.ConnectDistributed"


def rest(url, method="GET", body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        text = r.read().decode()
        return r.status, (json.loads(text) if text else None)


class Worker(LoggedProcess):
    """One ConnectDistributed process; its log goes to a file."""

    what, tail = "worker", 5000

    def __init__(self, props_path, log_path, port):
        java = shutil.which("java")
        assert java, "java is not on PATH; run scripts/install-test-deps.sh"
        assert list(CONNECT_LIB.glob("connect-runtime-*.jar")), \
            f"Kafka Connect jars missing from {CONNECT_LIB}; run scripts/install-test-deps.sh"
        self.url = f"http://127.0.0.1:{port}"
        super().__init__([java, *JAVA_OPTS, "-cp", f"{CONNECT_LIB}/*", WORKER, str(props_path)], log_path)

    def stop(self, timeout=None):
        """SIGTERM. On SIGTERM the JVM runs Connect's shutdown hook, which stops the REST server
        (Jetty) and then the herder, and at the same time Jetty's own shutdown hook, which stops
        the same server (Connect sets `stopAtShutdown`). Once in CI (stop 28) the two raced on a
        busy machine: Jetty's hook failed ("Unable to destroy ... STARTED"), Connect's hook never
        got past the REST server, and the herder was still ticking 60 s later. That hang is
        inside the worker and before the herder is asked to stop, so it involves no request to
        the broker; when the thread dump shows Connect's hook inside the REST server's stop, the
        worker is killed instead and the race is printed. Nothing the test checks depends on
        the graceful stop: offsets are flushed every second (`offset.flush.interval.ms`) and
        the worker was idle, and a record delivered twice after the restart still fails the
        exact comparison of the sink file. Any other hang fails the test with the dump."""
        timeout = self.stop_timeout if timeout is None else timeout
        try:
            if self.terminate(timeout):
                return
            text = self.dump_and_kill()
            hook = thread_stack(text, "connect-shutdown-hook")
            if "RestServer.stop" not in hook:
                raise AssertionError(self.hang_report(timeout, text))
            print(f"\nConnect's shutdown hook hung in its REST server's stop (the Jetty shutdown race, "
                  f"inside the worker); killed:\n{hook[:3000]}")
        finally:
            self.log.close()

    def wait_rest(self, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"worker exited ({self.proc.returncode}):\n{self.text()[-5000:]}"
            try:
                status, _ = rest(self.url + "/connectors", timeout=3)
                if status == 200:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"worker REST not ready after {timeout}s:\n{self.text()[-5000:]}")

    def create(self, name, config, timeout=60):
        """POST a connector; retried while the worker is still joining its group (409)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, _ = rest(self.url + "/connectors", "POST", {"name": name, "config": config}, timeout=30)
                assert status == 201, status
                return
            except urllib.error.HTTPError as e:
                if e.code != 409 or time.monotonic() > deadline:
                    raise AssertionError(f"POST {name}: {e.code} {e.read()!r}\n{self.text()[-5000:]}")
            time.sleep(1)

    def wait_tasks_running(self, names, timeout=60):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                states = [rest(f"{self.url}/connectors/{n}/status")[1] for n in names]
                last = states
                if all(s["connector"]["state"] == "RUNNING" and s["tasks"]
                       and all(t["state"] == "RUNNING" for t in s["tasks"]) for s in states):
                    return
            except urllib.error.HTTPError as e:
                last = e
            time.sleep(0.5)
        raise AssertionError(f"connectors not running after {timeout}s: {last}\n{self.text()[-5000:]}")


def wait_lines(path, expected, worker, timeout=60):
    """Waits until `path` has exactly the lines `expected` (fails at once on an extra line)."""
    deadline = time.monotonic() + timeout
    got = []
    while time.monotonic() < deadline:
        got = path.read_text().splitlines() if path.exists() else []
        assert got == expected[:len(got)], f"sink file diverged: {got[-5:]} (expected prefix of {len(expected)})"
        if got == expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"sink file has {len(got)} of {len(expected)} lines after {timeout}s\n"
                         f"{worker.text()[-5000:]}")


def test_connect_distributed_file_source_to_sink_resumes_after_restart(broker, tmp_path):
    b = broker.bootstrap
    group = unique_topic("connect")
    storage = {k: f"{group}-{k}" for k in ("configs", "offsets", "status")}
    topic = unique_topic("lines")
    port = free_port()
    props = tmp_path / "worker.properties"
    props.write_text("\n".join([
        f"bootstrap.servers={b}",
        f"group.id={group}",
        f"config.storage.topic={storage['configs']}",
        f"offset.storage.topic={storage['offsets']}",
        f"status.storage.topic={storage['status']}",
        "config.storage.replication.factor=1",
        "offset.storage.replication.factor=1",
        "status.storage.replication.factor=1",
        "offset.storage.partitions=1",
        "status.storage.partitions=1",
        "key.converter=org.apache.kafka.connect.storage.StringConverter",
        "value.converter=org.apache.kafka.connect.storage.StringConverter",
        "offset.flush.interval.ms=1000",
        f"listeners=http://127.0.0.1:{port}",
        "rest.advertised.host.name=127.0.0.1",
        f"rest.advertised.port={port}",
        "",
    ]))
    source, sink = tmp_path / "in.txt", tmp_path / "out.txt"
    lines = [f"line {i} of the connect test" for i in range(50)]
    source.write_text("".join(x + "\n" for x in lines))

    worker = Worker(props, tmp_path / "worker1.log", port)
    worker.wait_rest()
    worker.create("file-source", {"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                                  "tasks.max": "1", "file": str(source), "topic": topic})
    worker.create("file-sink", {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
                                "tasks.max": "1", "file": str(sink), "topics": topic})
    worker.wait_tasks_running(["file-source", "file-sink"])
    wait_lines(sink, lines, worker)

    # The worker made its storage topics compacted, as Connect requires.
    ck_admin = need_module("confluent_kafka.admin")
    admin = ck_admin.AdminClient({"bootstrap.servers": b})
    for t in storage.values():
        res = ck_admin.ConfigResource(ck_admin.ResourceType.TOPIC, t)
        assert admin.describe_configs([res])[res].result(timeout=30)["cleanup.policy"].value == "compact", t

    worker.stop()
    more = [f"line {i} after the restart" for i in range(50, 70)]
    with open(source, "a") as f:
        f.write("".join(x + "\n" for x in more))
    worker = Worker(props, tmp_path / "worker2.log", port)
    try:
        worker.wait_rest()
        worker.wait_tasks_running(["file-source", "file-sink"])
        wait_lines(sink, lines + more, worker)
        time.sleep(3)  # a duplicate would show up by now: the source and sink are both polling
        assert sink.read_text().splitlines() == lines + more
    finally:
        worker.stop()
