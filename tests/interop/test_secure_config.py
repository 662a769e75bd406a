"""The ready-made secure setup (issue 13): scripts/dev-certs.sh writes a throw-away CA and server
certificate into ./certs, and config/secure/standalone.toml, run from that directory, serves
PLAINTEXT and SASL_SSL (SCRAM-SHA-256/512 and PLAIN) with the authorizer on and the super-user
`admin`. The test uses the shipped file as it is, except for its two ports (free ones here, so
that it cannot collide with anything on 9092/9093).

Shown with real clients: the Java kafka-topics tool logs in as admin with SCRAM-SHA-512 and
creates a topic; confluent-kafka produces as admin over PLAIN and consumes over SCRAM-SHA-256; an
anonymous PLAINTEXT client sees no topic and may not produce (TOPIC_AUTHORIZATION_FAILED), as
Kafka's authorizer answers with no ACL for it.
"""
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import kafka_wire
from conftest import HARNESS_ENV, START_TIMEOUT, _LIVE, chronik_bin, free_port
from helpers import TOPIC_COMMAND, java_tool, need_module

pytestmark = pytest.mark.chronik_only

REPO = Path(__file__).resolve().parents[2]
ADMIN, ADMIN_PASSWORD = "admin", "admin-secret"   # the file's documented development default


@pytest.fixture(scope="module")
def secure_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("secure-config")
    subprocess.run(["bash", str(REPO / "scripts/dev-certs.sh"), str(d / "certs")], check=True, timeout=120)
    for f in ("ca.pem", "server.pem", "server-key.pem"):
        assert (d / "certs" / f).is_file(), f
    plain, sasl_ssl = free_port(), free_port()
    text = (REPO / "config/secure/standalone.toml").read_text()
    assert '"PLAINTEXT://127.0.0.1:9092", "SASL_SSL://127.0.0.1:9093"' in text, "the shipped listeners"
    text = text.replace("127.0.0.1:9092", f"127.0.0.1:{plain}").replace("127.0.0.1:9093", f"127.0.0.1:{sasl_ssl}")
    (d / "standalone.toml").write_text(text)
    env = {k: v for k, v in os.environ.items() if k not in HARNESS_ENV}
    env["CHRONIK_ADMIN__LISTEN"] = f"127.0.0.1:{free_port()}"
    log_path = d / "broker.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([str(chronik_bin()), "standalone", "--config", "standalone.toml"], cwd=d,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    _LIVE.add(proc)
    deadline = time.monotonic() + START_TIMEOUT
    while not _serving(f"127.0.0.1:{plain}"):
        assert proc.poll() is None, f"chronik exited\n{log_path.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"chronik not ready\n{log_path.read_text()[-4000:]}"
        time.sleep(0.05)
    yield {"dir": d, "plain": f"127.0.0.1:{plain}", "sasl_ssl": f"127.0.0.1:{sasl_ssl}"}
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    _LIVE.discard(proc)
    assert (d / "data").is_dir(), "data-dir ./data is relative to the directory the broker runs in"
    assert ADMIN_PASSWORD not in log_path.read_text(), "the password never reaches the log"
    shutil.rmtree(d / "data", ignore_errors=True)


def _serving(bootstrap):
    try:
        return kafka_wire.api_versions_ok(bootstrap, timeout=2)
    except (OSError, AssertionError, ValueError):
        return False


def admin_conf(s, mechanism):
    return {"bootstrap.servers": s["sasl_ssl"], "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(s["dir"] / "certs/ca.pem"), "sasl.mechanisms": mechanism,
            "sasl.username": ADMIN, "sasl.password": ADMIN_PASSWORD}


def test_admin_over_sasl_ssl_and_anonymous_plaintext_refused(secure_dir, tmp_path):
    need_module("confluent_kafka")
    from confluent_kafka import Consumer, KafkaError, Producer
    s = secure_dir
    topic = f"secure-{uuid.uuid4().hex[:8]}"
    # The Java tool, as admin with SCRAM-SHA-512 over SASL_SSL.
    props = tmp_path / "admin.properties"
    props.write_text("\n".join([
        "security.protocol=SASL_SSL", "ssl.truststore.type=PEM",
        f"ssl.truststore.location={s['dir'] / 'certs/ca.pem'}", "sasl.mechanism=SCRAM-SHA-512",
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN}" password="{ADMIN_PASSWORD}";']) + "\n")
    java_tool(TOPIC_COMMAND, "--bootstrap-server", s["sasl_ssl"], "--command-config", str(props),
              "--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1")
    listed = java_tool(TOPIC_COMMAND, "--bootstrap-server", s["sasl_ssl"], "--command-config", str(props),
                       "--list")
    assert topic in listed.out.split(), listed.describe()

    # confluent-kafka: produce as admin over PLAIN, read back over SCRAM-SHA-256.
    p = Producer(admin_conf(s, "PLAIN"))
    errors = []
    for i in range(20):
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i, on_delivery=lambda e, m: e and errors.append(e))
    assert p.flush(30) == 0 and not errors, errors
    c = Consumer({**admin_conf(s, "SCRAM-SHA-256"), "group.id": f"g-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got, deadline = [], time.monotonic() + 60
    while len(got) < 20 and time.monotonic() < deadline:
        m = c.poll(1)
        if m is not None and m.error() is None:
            got.append(m.value())
    c.close()
    assert got == [b"v%d" % i for i in range(20)]

    # Anonymous on PLAINTEXT: no ACL allows it anything, so the topic is hidden and produce refused.
    anon = {"bootstrap.servers": s["plain"]}
    from confluent_kafka.admin import AdminClient
    md = AdminClient(anon).list_topics(timeout=20)
    assert topic not in md.topics, "Metadata hides topics the principal may not describe"
    refused = []
    ap = Producer({**anon, "message.timeout.ms": 10000, "enable.idempotence": False})
    ap.produce(topic, value=b"x", on_delivery=lambda e, m: refused.append(e))
    ap.flush(30)
    assert refused and refused[0] is not None, "anonymous produce must fail"
    assert refused[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused[0]
