"""Security with real clients: TLS, SASL/PLAIN and SASL/SCRAM-SHA-512 against one chronik with four
listeners (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL). Certificates are made at run time with the
openssl CLI (never committed keys). Every client (Java console producer/consumer and
kafka-topics via TopicCommand with a client properties file, kcat, confluent-kafka,
kafka-python) produces and consumes over SSL, SASL_PLAINTEXT (PLAIN and SCRAM-SHA-512) and
SASL_SSL; the SCRAM user is created with kafka-configs (ConfigCommand, AlterUserScramCredentials).
kafka-python with `api_version=(0, 11)` logs in the pre-KIP-152 way (SaslHandshake v0, raw tokens).
Negative cases: wrong password, unknown user, unknown mechanism, a request before
authentication, plaintext on the TLS port and TLS on the plaintext port, an expired client
certificate, a truncated SASL exchange. Zero-copy fetch: plaintext listeners send the batches with
sendfile, TLS ones copy them (chronik_fetch_record_bytes_total). Last, the broker's log is searched
for every test secret.
"""
import socket
import ssl
import struct
import time
import urllib.request
import uuid

import pytest

import kafka_wire
from cluster import Metrics
from conftest import free_port
from helpers import (CONFIG_COMMAND, CONSOLE_CONSUMER, CONSOLE_PRODUCER, TOPIC_COMMAND, SecureBroker,
                     java_client_props, java_tool, kcat, librdkafka_security, make_pki, need_module)

pytestmark = pytest.mark.chronik_only

PLAIN_USER, PLAIN_PASSWORD = "alice", "alice-pw-" + uuid.uuid4().hex[:8]
SCRAM_USER, SCRAM_PASSWORD = "bob", "bob-pw-" + uuid.uuid4().hex[:8]
SECRETS = [PLAIN_PASSWORD, SCRAM_PASSWORD]


def secure_broker(d):
    """One chronik with the four listeners and an admin API; SCRAM-SHA-512 and PLAIN users."""
    ports = {n: free_port() for n in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL", "admin")}
    b = SecureBroker(d, {n: p for n, p in ports.items() if n != "admin"}, f"""connections-max-reauth-ms = 0
[tls]
cert-file = "{d}/server.pem"
key-file = "{d}/server-key.pem"
ca-file = "{d}/ca.pem"
client-auth = "requested"
[sasl]
enabled-mechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
plain-users = {{ {PLAIN_USER} = "{PLAIN_PASSWORD}" }}
[admin]
listen = "127.0.0.1:{ports["admin"]}"
""")
    b.admin = f"127.0.0.1:{ports['admin']}"
    return b


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    d = tmp_path_factory.mktemp("secure")
    make_pki(d)
    b = secure_broker(d)
    b.start()
    # The SCRAM user, created as operators do: kafka-configs over the PLAINTEXT listener.
    java_tool(CONFIG_COMMAND, "--bootstrap-server", b.bootstrap("PLAINTEXT"), "--alter", "--add-config",
              f"SCRAM-SHA-512=[iterations=8192,password={SCRAM_PASSWORD}]", "--entity-type", "users",
              "--entity-name", SCRAM_USER)
    # (`kafka-configs --describe --entity-type users` also asks DescribeClientQuotas, which the
    # quotas work serves; the SCRAM logins below prove the credential.)
    yield b
    b.stop()


# (listener, mechanism or None, user, password)
MODES = [
    ("SSL", None, None, None),
    ("SASL_PLAINTEXT", "PLAIN", PLAIN_USER, PLAIN_PASSWORD),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512", SCRAM_USER, SCRAM_PASSWORD),
    ("SASL_SSL", "SCRAM-SHA-512", SCRAM_USER, SCRAM_PASSWORD),
]
IDS = ["ssl", "sasl_plaintext-plain", "sasl_plaintext-scram512", "sasl_ssl-scram512"]


def librdkafka_conf(b, mode):
    listener, mech, user, pw = mode
    return {"bootstrap.servers": b.bootstrap(listener),
            **librdkafka_security(listener, mech, user, pw, ca=b.dir / "ca.pem")}


def java_props(b, mode, path):
    listener, mech, user, pw = mode
    return java_client_props(path, listener, mech, user, pw, ca=b.dir / "ca.pem")


def topic_name(client, mode_id):
    return f"sec-{client}-{mode_id}-{uuid.uuid4().hex[:6]}"


@pytest.mark.parametrize("mode", MODES, ids=IDS)
def test_java_tools(secure, mode, tmp_path):
    props = java_props(secure, mode, tmp_path / "client.properties")
    bs = secure.bootstrap(mode[0])
    topic = topic_name("java", mode[0].lower())
    java_tool(TOPIC_COMMAND, "--bootstrap-server", bs, "--command-config", props, "--create", "--topic", topic,
              "--partitions", "1", "--replication-factor", "1")
    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", bs, "--command-config", props, "--list")
    assert topic in r.out.split(), r.describe()
    java_tool(CONSOLE_PRODUCER, "--bootstrap-server", bs, "--command-config", props, "--topic", topic,
              input="one\ntwo\nthree\n")
    r = java_tool(CONSOLE_CONSUMER, "--bootstrap-server", bs, "--command-config", props, "--topic", topic,
                  "--from-beginning", "--max-messages", "3", "--timeout-ms", "30000")
    assert r.out.split() == ["one", "two", "three"], r.describe()


@pytest.mark.parametrize("mode", MODES, ids=IDS)
def test_kcat(secure, mode):
    conf = [x for k, v in librdkafka_conf(secure, mode).items() if k != "bootstrap.servers" for x in ("-X", f"{k}={v}")]
    bs = secure.bootstrap(mode[0])
    topic = topic_name("kcat", mode[0].lower())
    kcat("-b", bs, *conf, "-P", "-t", topic, "-X", "topic.request.required.acks=all", input="a\nb\n")
    r = kcat("-b", bs, *conf, "-C", "-t", topic, "-o", "beginning", "-c", "2", "-e", timeout=60)
    assert r.out.split() == ["a", "b"], r.describe()


def fetch_bytes(b):
    """{how sent: record bytes} of the broker's Fetch responses so far."""
    with urllib.request.urlopen(f"http://{b.admin}/metrics", timeout=5) as r:
        m = Metrics(1, r.read().decode())
    return {how: m.total("chronik_fetch_record_bytes_total", sent=how) for how in ("sendfile", "copied")}


def test_fetch_is_zero_copy_on_plaintext_and_copied_on_tls(secure, tmp_path):
    """Written batches go from the page cache to a plaintext socket with sendfile; a TLS listener
    reads (and checks) them. Both give every record back, byte for byte, to kcat and to the Java
    consumer (which checks each batch's CRC)."""
    topic = topic_name("zerocopy", "plaintext")
    values = [f"{i:05d}-" + "z" * 1000 for i in range(300)]
    payload = sum(len(v) for v in values)
    kcat("-b", secure.bootstrap("PLAINTEXT"), "-P", "-t", topic, "-X", "topic.request.required.acks=all",
         input="\n".join(values) + "\n")

    before = fetch_bytes(secure)
    r = kcat("-b", secure.bootstrap("PLAINTEXT"), "-C", "-t", topic, "-o", "beginning", "-c", len(values), "-e",
             timeout=60)
    assert r.out.split() == values, r.describe()
    r = java_tool(CONSOLE_CONSUMER, "--bootstrap-server", secure.bootstrap("PLAINTEXT"), "--topic", topic,
                  "--from-beginning", "--max-messages", str(len(values)), "--timeout-ms", "30000")
    assert r.out.split() == values, r.describe()
    plain = fetch_bytes(secure)
    sent = {k: plain[k] - before[k] for k in plain}
    assert sent["sendfile"] >= 2 * payload, f"plaintext fetches: {sent} (records {payload} B, read twice)"
    assert sent["copied"] == 0, f"plaintext fetches copied bytes: {sent}"

    conf = [x for k, v in librdkafka_conf(secure, MODES[0]).items() if k != "bootstrap.servers"
            for x in ("-X", f"{k}={v}")]
    r = kcat("-b", secure.bootstrap("SSL"), *conf, "-C", "-t", topic, "-o", "beginning", "-c", len(values), "-e",
             timeout=60)
    assert r.out.split() == values, r.describe()
    tls = fetch_bytes(secure)
    sent = {k: tls[k] - plain[k] for k in tls}
    assert sent["copied"] >= payload, f"TLS fetches: {sent} (records {payload} B)"
    assert sent["sendfile"] == 0, f"TLS fetches used sendfile: {sent}"


@pytest.mark.parametrize("mode", MODES, ids=IDS)
def test_confluent_kafka(secure, mode):
    ck = need_module("confluent_kafka")
    conf = librdkafka_conf(secure, mode)
    topic = topic_name("ck", mode[0].lower())
    p = ck.Producer({**conf, "acks": "all"})
    for i in range(5):
        p.produce(topic, value=f"v{i}".encode())
    assert p.flush(30) == 0
    c = ck.Consumer({**conf, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got, deadline = [], time.monotonic() + 60
    while len(got) < 5 and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            got.append(m.value().decode())
    c.close()
    assert got == [f"v{i}" for i in range(5)]


@pytest.mark.parametrize("mode", MODES, ids=IDS)
def test_kafka_python(secure, mode):
    kp = need_module("kafka")
    listener, mech, user, pw = mode
    conf = {"bootstrap_servers": secure.bootstrap(listener), "security_protocol": listener}
    if "SSL" in listener:
        conf["ssl_cafile"] = str(secure.dir / "ca.pem")
    if mech:
        conf.update({"sasl_mechanism": mech, "sasl_plain_username": user, "sasl_plain_password": pw})
    topic = topic_name("kp", listener.lower())
    kafka_python_round_trip(kp, topic, conf)


def kafka_python_round_trip(kp, topic, conf, assign=False):
    """Five records produced with acks=all and read back with kafka-python, over `conf`; the
    consumer subscribes, or with `assign` is assigned partition 0."""
    p = kp.KafkaProducer(acks="all", **conf)
    for i in range(5):
        p.send(topic, f"v{i}".encode()).get(timeout=30)
    p.close()
    if assign:
        c = kp.KafkaConsumer(auto_offset_reset="earliest", consumer_timeout_ms=20000, **conf)
        c.assign([kp.TopicPartition(topic, 0)])
    else:
        c = kp.KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=20000, **conf)
    got = []
    for m in c:
        got.append(m.value.decode())
        if len(got) == 5:
            break
    c.close()
    assert got == [f"v{i}" for i in range(5)]


@pytest.mark.parametrize("mech,user,pw", [("PLAIN", PLAIN_USER, PLAIN_PASSWORD),
                                         ("SCRAM-SHA-512", SCRAM_USER, SCRAM_PASSWORD)], ids=["plain", "scram512"])
def test_kafka_python_raw_sasl_tokens(secure, mech, user, pw):
    """kafka-python told the broker is 0.11 (`api_version=(0, 11)`) authenticates the way clients
    did before KIP-152: SaslHandshake v0, then raw size-prefixed SASL tokens (kafka-python's
    SaslBytesRequest). The broker logs which framing each login used. The consumer is assigned its
    partition: kafka-python's 0.11 mode subscribing without a group once read nothing in 20 s in
    CI (the subject here is the login, not the subscription)."""
    kp = need_module("kafka")
    conf = {"bootstrap_servers": secure.bootstrap("SASL_PLAINTEXT"), "security_protocol": "SASL_PLAINTEXT",
            "api_version": (0, 11), "sasl_mechanism": mech, "sasl_plain_username": user,
            "sasl_plain_password": pw}
    topic = topic_name("kp-raw", mech.lower())
    before = secure.log_path.read_text().count(f"framing: raw tokens, principal: User:{user},")
    kafka_python_round_trip(kp, topic, conf, assign=True)
    after = secure.log_path.read_text().count(f"framing: raw tokens, principal: User:{user},")
    assert after > before, "no login with raw SASL tokens in the broker log"


# --- negative cases on the wire ------------------------------------------------------------------
def frame(api_key, version, corr, body):
    return kafka_wire.request(api_key, version, corr, body)


def recv_frame(s):
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (n,) = struct.unpack(">i", head)
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def closed(s, timeout=10):
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def handshake_v1(s, mech):
    s.sendall(frame(17, 1, 1, kafka_wire.string(mech)))
    data = recv_frame(s)
    (corr, err) = struct.unpack(">ih", data[:6])
    return err, data


def authenticate_v1(s, token):
    s.sendall(frame(36, 1, 2, kafka_wire.bytes_field(token)))
    data = recv_frame(s)
    (corr, err) = struct.unpack(">ih", data[:6])
    return err


def test_negative_cases(secure):
    sasl = ("127.0.0.1", secure.ports["SASL_PLAINTEXT"])
    # Wrong password, unknown user: SASL_AUTHENTICATION_FAILED (58), then closed.
    for user, pw in [(PLAIN_USER, "wrong"), ("mallory", PLAIN_PASSWORD)]:
        with socket.create_connection(sasl, timeout=10) as s:
            assert handshake_v1(s, "PLAIN")[0] == 0
            assert authenticate_v1(s, f"\0{user}\0{pw}".encode()) == 58
            assert closed(s)
    # Unknown mechanism: UNSUPPORTED_SASL_MECHANISM (33) with the enabled list.
    with socket.create_connection(sasl, timeout=10) as s:
        err, data = handshake_v1(s, "GSSAPI")
        assert err == 33 and b"SCRAM-SHA-512" in data and b"PLAIN" in data
        assert closed(s)
    # A request before authentication (Metadata v1) closes the connection.
    with socket.create_connection(sasl, timeout=10) as s:
        s.sendall(frame(3, 1, 1, struct.pack(">i", -1)))
        assert closed(s)
    # Truncated SCRAM exchange: client-first, then the client goes away.
    with socket.create_connection(sasl, timeout=10) as s:
        assert handshake_v1(s, "SCRAM-SHA-512")[0] == 0
        s.sendall(frame(36, 1, 2, kafka_wire.bytes_field(b"n,,n=bob,r=abc"))[:-5])
    # Plaintext Kafka on the TLS port: closed (rustls sends an alert at most).
    with socket.create_connection(("127.0.0.1", secure.ports["SSL"]), timeout=10) as s:
        s.sendall(frame(18, 0, 1, b""))
        assert closed(s)
    # TLS on the plaintext port: the handshake fails, the connection is closed.
    ctx = ssl.create_default_context(cafile=str(secure.dir / "ca.pem"))
    with socket.create_connection(("127.0.0.1", secure.ports["PLAINTEXT"]), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            ctx.wrap_socket(raw, server_hostname="localhost")
    # An expired client certificate is refused in the handshake; a valid one is accepted.
    for cert, ok in [("expired", False), ("client", True)]:
        ctx = ssl.create_default_context(cafile=str(secure.dir / "ca.pem"))
        ctx.load_cert_chain(str(secure.dir / f"{cert}.pem"), str(secure.dir / f"{cert}-key.pem"))
        with socket.create_connection(("127.0.0.1", secure.ports["SSL"]), timeout=10) as raw:
            try:
                with ctx.wrap_socket(raw, server_hostname="localhost") as t:
                    t.sendall(frame(18, 0, 1, b""))
                    answered = recv_frame(t) is not None
            except (ssl.SSLError, ConnectionResetError, OSError):
                answered = False
        assert answered == ok, cert
    # The broker is still up and serving.
    assert secure.alive()
    assert kafka_wire.api_versions_ok(secure.bootstrap("PLAINTEXT"), timeout=5)


def test_no_secret_in_the_log(secure):
    """Runs last in this file (pytest keeps file order): every test above has logged by now."""
    text = secure.log_text()
    assert "authenticated" in text, "the log has the authentication lines this test searches"
    for secret in SECRETS:
        assert secret not in text, "a test password appears in the broker log"
    assert "PRIVATE KEY" not in text
