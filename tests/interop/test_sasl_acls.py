"""The ACL matrix with SASL-authenticated principals and real clients.

One chronik with a single SASL_PLAINTEXT listener (SCRAM-SHA-512 only), the authorizer on, no
ACL meaning no access, and the super-user `admin` (a config-file user). As operators do, admin
creates the SCRAM user `alice` with kafka-configs (Java ConfigCommand,
AlterUserScramCredentials) and grants her, with kafka-acls (Java
org.apache.kafka.tools.AclCommand): READ on topic `a` and group `g`, READ on topics PREFIXED
`pre-`, and a DENY of READ on `pre-y`. Then, as alice, with the Java console clients (client
settings by `--command-config`, which 4.4 prefers to --consumer.config / --producer.config)
and confluent-kafka:
* consuming `a` with `g` works;
* producing to `a` is refused: TOPIC_AUTHORIZATION_FAILED as the clients report it;
* `b` (no ACL) can be neither read, written nor listed;
* another group: GROUP_AUTHORIZATION_FAILED;
* CreateTopics, DeleteTopics, AlterConfigs, IncrementalAlterConfigs and DeleteRecords are refused
  with TOPIC_AUTHORIZATION_FAILED, as Kafka answers them;
* `pre-x` is readable through the prefixed rule, `pre-y` is not (DENY wins);
* an ACL added (WRITE on `a`) is in force for alice's producer within a second of kafka-acls
  returning, and its removal likewise.
"""
import time
import uuid

import pytest

from conftest import free_port
from helpers import (ACL_COMMAND, CONFIG_COMMAND, CONSOLE_CONSUMER, CONSOLE_PRODUCER, TOPIC_COMMAND, SecureBroker,
                     java_client_props, java_tool, librdkafka_security, need_module, report)

pytestmark = pytest.mark.chronik_only

ADMIN_PW = "admin-pw-" + uuid.uuid4().hex[:8]
ALICE_PW = "alice-pw-" + uuid.uuid4().hex[:8]
MSGS = ["m0", "m1", "m2"]
LISTENER, MECH = "SASL_PLAINTEXT", "SCRAM-SHA-512"


class Setup:
    def __init__(self, broker, admin_props, alice_props):
        self.broker = broker
        self.bs = broker.bootstrap(LISTENER)
        self.admin_props = admin_props
        self.alice_props = alice_props

    def admin(self, cls, *args, **kw):
        return java_tool(cls, "--bootstrap-server", self.bs, "--command-config", self.admin_props, *args, **kw)

    def acls(self, *args):
        return self.admin(ACL_COMMAND, *args, timeout=90)

    def ck(self, **extra):
        """confluent-kafka settings for alice."""
        return {"bootstrap.servers": self.bs, **librdkafka_security(LISTENER, MECH, "alice", ALICE_PW), **extra}

    def consume_as_alice(self, topic, group, n=len(MSGS), timeout_ms=20000):
        return java_tool(CONSOLE_CONSUMER, "--bootstrap-server", self.bs, "--command-config", self.alice_props,
                         "--topic", topic, "--group", group, "--from-beginning", "--max-messages", n,
                         "--timeout-ms", timeout_ms, timeout=90, check=False)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("sasl-acls")
    broker = SecureBroker(d, {LISTENER: free_port()}, f"""connections-max-reauth-ms = 0
[sasl]
enabled-mechanisms = ["{MECH}"]
plain-users = {{ admin = "{ADMIN_PW}" }}
[authorizer]
enabled = true
super-users = ["User:admin"]
allow-everyone-if-no-acl-found = false
[admin]
listen = "127.0.0.1:0"
""")
    broker.start()
    s = Setup(broker, java_client_props(d / "admin.properties", LISTENER, MECH, "admin", ADMIN_PW),
              java_client_props(d / "alice.properties", LISTENER, MECH, "alice", ALICE_PW))
    try:
        for t in ("a", "b", "pre-x", "pre-y"):
            s.admin(TOPIC_COMMAND, "--create", "--topic", t, "--partitions", 1, "--replication-factor", 1)
            s.admin(CONSOLE_PRODUCER, "--topic", t, input="\n".join(MSGS) + "\n", timeout=60)
        s.admin(CONFIG_COMMAND, "--alter", "--add-config", f"SCRAM-SHA-512=[password={ALICE_PW}]",
                "--entity-type", "users", "--entity-name", "alice")
        s.acls("--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "a", "--group", "g")
        s.acls("--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "pre-",
               "--resource-pattern-type", "prefixed")
        s.acls("--add", "--deny-principal", "User:alice", "--operation", "Read", "--topic", "pre-y")
        r = s.acls("--list", "--principal", "User:alice")
        for want in ["name=a, patternType=LITERAL", "name=g, patternType=LITERAL", "name=pre-, patternType=PREFIXED",
                     "principal=User:alice, host=*, operation=READ, permissionType=DENY"]:
            assert want in r.out, r.describe()
        yield s
    finally:
        broker.stop()
        print(broker.log_text()[-6000:])


def produce_as_alice(producer, topic, value):
    """One record through `producer`; the delivery error code (None when it was appended)."""
    got = []
    producer.produce(topic, value=value.encode(), on_delivery=lambda err, msg: got.append(err))
    assert producer.flush(30) == 0, "no delivery report within 30 s"
    return None if got[0] is None else got[0].code()


def test_alice_consumes_a_with_group_g(setup):
    r = setup.consume_as_alice("a", "g")
    got = [line for line in r.out.splitlines() if line in MSGS]
    assert got == MSGS, r.describe()


def test_alice_may_not_produce_to_a(setup):
    ck = need_module("confluent_kafka")
    p = ck.Producer(setup.ck(acks="all", **{"message.timeout.ms": 15000}))
    assert produce_as_alice(p, "a", "no") == ck.KafkaError.TOPIC_AUTHORIZATION_FAILED
    # The Java producer (idempotence off: with it, InitProducerId would be refused first, as a
    # CLUSTER_AUTHORIZATION_FAILED) reports the same code as its exception.
    r = java_tool(CONSOLE_PRODUCER, "--bootstrap-server", setup.bs, "--command-config", setup.alice_props,
                  "--topic", "a", "--producer-property", "enable.idempotence=false",
                  "--producer-property", "max.block.ms=15000", "--producer-property", "delivery.timeout.ms=15000",
                  "--producer-property", "request.timeout.ms=10000", input="denied\n", timeout=90, check=False)
    assert "TopicAuthorizationException" in r.out + r.err, r.describe()
    r = setup.consume_as_alice("a", "g", n=len(MSGS) + 1, timeout_ms=5000)
    assert "denied" not in r.out and "no" not in r.out.split(), r.describe()


def test_alice_has_no_access_to_b(setup):
    ck = need_module("confluent_kafka")
    r = setup.consume_as_alice("b", "g", timeout_ms=15000)
    assert "TopicAuthorizationException" in r.out + r.err and not set(MSGS) & set(r.out.split()), r.describe()
    p = ck.Producer(setup.ck(acks="all", **{"message.timeout.ms": 15000}))
    assert produce_as_alice(p, "b", "no") == ck.KafkaError.TOPIC_AUTHORIZATION_FAILED
    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", setup.bs, "--command-config", setup.alice_props, "--list")
    listed = set(r.out.split())
    assert {"a", "pre-x", "pre-y"} <= listed and "b" not in listed, r.describe()


def test_alice_may_not_use_another_group(setup):
    ck = need_module("confluent_kafka")
    r = setup.consume_as_alice("a", "h", timeout_ms=15000)
    assert "GroupAuthorizationException" in r.out + r.err, r.describe()
    c = ck.Consumer(setup.ck(**{"group.id": "h", "auto.offset.reset": "earliest"}))
    c.subscribe(["a"])
    err, deadline = None, time.monotonic() + 30
    while err is None and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is not None:
            assert m.error() is not None, f"group h read {m.value()}"
            err = m.error().code()
    c.close()
    assert err == ck.KafkaError.GROUP_AUTHORIZATION_FAILED, err


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")  # AlterConfigs is tested on purpose
def test_alice_admin_requests_are_refused_with_kafkas_codes(setup):
    ck = need_module("confluent_kafka")
    adm = need_module("confluent_kafka.admin")
    admin = adm.AdminClient(setup.ck())
    denied = ck.KafkaError.TOPIC_AUTHORIZATION_FAILED

    def code(future):
        with pytest.raises(ck.KafkaException) as e:
            future.result(timeout=30)
        return e.value.args[0].code()

    f = admin.create_topics([adm.NewTopic("new-by-alice", num_partitions=1, replication_factor=1)],
                            operation_timeout=20)
    assert code(f["new-by-alice"]) == denied
    f = admin.delete_topics(["a"], operation_timeout=20)
    assert code(f["a"]) == denied
    res = adm.ConfigResource(adm.ResourceType.TOPIC, "a", set_config={"retention.ms": "1000"})
    assert code(admin.alter_configs([res])[res]) == denied
    res = adm.ConfigResource(adm.ResourceType.TOPIC, "a", incremental_configs=[
        adm.ConfigEntry("retention.ms", "1000", incremental_operation=adm.AlterConfigOpType.SET)])
    assert code(admin.incremental_alter_configs([res])[res]) == denied
    tp = ck.TopicPartition("a", 0, 1)
    assert code(admin.delete_records([tp])[tp]) == denied
    # Nothing changed: the topic, its records and its config are as admin left them.
    r = setup.admin(TOPIC_COMMAND, "--list")
    assert "new-by-alice" not in r.out.split() and "a" in r.out.split(), r.describe()
    r = setup.admin(CONFIG_COMMAND, "--describe", "--entity-type", "topics", "--entity-name", "a")
    assert "retention.ms=1000" not in r.out, r.describe()
    c = ck.Consumer(setup.ck(**{"group.id": "g", "enable.auto.commit": False}))
    assert c.get_watermark_offsets(ck.TopicPartition("a", 0), timeout=30) == (0, len(MSGS))
    c.close()


def test_prefixed_allow_and_deny(setup):
    r = setup.consume_as_alice("pre-x", "g")
    assert [line for line in r.out.splitlines() if line in MSGS] == MSGS, r.describe()
    r = setup.consume_as_alice("pre-y", "g", timeout_ms=15000)
    assert "TopicAuthorizationException" in r.out + r.err and not set(MSGS) & set(r.out.split()), r.describe()


def test_an_acl_change_is_in_force_within_a_second(setup):
    ck = need_module("confluent_kafka")
    p = ck.Producer(setup.ck(acks="all", **{"message.timeout.ms": 5000}))
    # Connected, authenticated, metadata known: refused now.
    assert produce_as_alice(p, "a", "before") == ck.KafkaError.TOPIC_AUTHORIZATION_FAILED

    def first_success_after(change, want):
        """Runs the kafka-acls `change`, then produces until the result is `want`; seconds taken."""
        setup.acls(*change)
        t0 = time.monotonic()
        while True:
            got = produce_as_alice(p, "a", "after")
            took = time.monotonic() - t0
            if got == want:
                return took
            assert took < 1.0, f"the ACL change was not in force within 1 s (still {got})"

    grant = ["--allow-principal", "User:alice", "--operation", "Write", "--topic", "a"]
    added = first_success_after(["--add", *grant], None)
    removed = first_success_after(["--remove", "--force", *grant], ck.KafkaError.TOPIC_AUTHORIZATION_FAILED)
    report(f"SASL ACL change in force for alice's producer: add {added * 1000:.0f} ms, "
           f"remove {removed * 1000:.0f} ms after kafka-acls returned")
    log = setup.broker.log_text()
    assert "authorization denied" in log and "User:alice" in log
