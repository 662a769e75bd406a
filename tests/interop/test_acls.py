"""ACLs with the real Apache Kafka 4.4 tools (`kafka-acls.sh` is org.apache.kafka.tools.AclCommand).

Phase 1: a broker with `[authorizer] enabled` whose super-user is `User:ANONYMOUS` (the
principal of a PLAINTEXT connection) adds, lists and removes ACLs with --topic, --group,
--cluster, --resource-pattern-type prefixed and --deny-principal.
Phase 2: the same data directory restarted with no super-user: the ACLs survived in `__meta`
and now bind the anonymous principal, which may read topic `a` with group `g` and nothing else
(console consumer works; console producer, kafka-topics --create and kafka-acls --list are
refused with Kafka's authorization errors).
"""
import os
import re
import subprocess

import pytest

from conftest import HARNESS_ENV, _LIVE, ChronikBroker
from helpers import (ACL_COMMAND, CONSOLE_CONSUMER, CONSOLE_PRODUCER, TOPIC_COMMAND, high_watermark, java_tool,
                     report, unique_topic, wait_topic_ready)

pytestmark = pytest.mark.chronik_only


class ConfiguredBroker(ChronikBroker):
    """A chronik process started with `--config <file>` (the file is rewritten per start)."""

    def __init__(self, workdir, toml):
        super().__init__(workdir)
        self.toml = toml

    def start(self):
        conf = self.workdir / "chronik.toml"
        conf.write_text(self.toml)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.bin), "standalone", "--config", str(conf), "--data-dir", str(self.data_dir),
               "--listen", self.bootstrap, "--advertised-addr", "127.0.0.1",
               "--admin-listen", "127.0.0.1:0"]
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(cmd)}\n{self.toml}\n".encode())
            log.flush()
            env = {k: v for k, v in os.environ.items() if k not in HARNESS_ENV}
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)
        _LIVE.add(self.proc)
        self._wait_ready()


SUPER_ANONYMOUS = '[authorizer]\nenabled = true\nsuper-users = ["User:ANONYMOUS"]\n'
NO_SUPER_USER = '[authorizer]\nenabled = true\nsuper-users = []\n'


def acls(b, *args, check=True):
    return java_tool(ACL_COMMAND, "--bootstrap-server", b, *args, timeout=90, check=check)


@pytest.fixture
def secured(tmp_path):
    broker = ConfiguredBroker(tmp_path, SUPER_ANONYMOUS)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        print(broker.log_tail(60))


def test_kafka_acls_add_list_remove_then_enforced(secured):
    b = secured.bootstrap
    a, other, g = unique_topic("acl-a"), unique_topic("acl-b"), unique_topic("grp")
    for t in (a, other):
        java_tool(TOPIC_COMMAND, "--bootstrap-server", b, "--create", "--topic", t,
                  "--partitions", 1, "--replication-factor", 1, timeout=60)
        wait_topic_ready(b, t, 1)
    msgs = [f"acl-{i}" for i in range(5)]
    java_tool(CONSOLE_PRODUCER, "--bootstrap-server", b, "--topic", a,
              input="\n".join(msgs) + "\n", timeout=60)

    # --add: READ on topic a and group g for the anonymous user; a prefixed DENY; a cluster ACL.
    r = acls(b, "--add", "--allow-principal", "User:ANONYMOUS", "--operation", "Read",
             "--topic", a, "--group", g)
    assert "Adding ACLs for resource" in r.out, r.describe()
    acls(b, "--add", "--deny-principal", "User:ANONYMOUS", "--operation", "Write",
         "--topic", "acl-", "--resource-pattern-type", "prefixed")
    acls(b, "--add", "--allow-principal", "User:ops", "--operation", "Alter", "--cluster")
    acls(b, "--add", "--allow-principal", "User:gone", "--operation", "Describe", "--topic", other)

    r = acls(b, "--list")
    out = r.out
    assert f"name={a}, patternType=LITERAL" in out, r.describe()
    assert f"name={g}, patternType=LITERAL" in out, r.describe()
    assert "resourceType=TOPIC, name=acl-, patternType=PREFIXED" in out, r.describe()
    assert "principal=User:ANONYMOUS, host=*, operation=WRITE, permissionType=DENY" in out, r.describe()
    assert "resourceType=CLUSTER, name=kafka-cluster" in out, r.describe()
    assert "principal=User:ops, host=*, operation=ALTER, permissionType=ALLOW" in out, r.describe()
    r = acls(b, "--list", "--topic", a)
    assert "operation=READ, permissionType=ALLOW" in r.out and g not in r.out, r.describe()

    # --remove (with --force: no prompt) takes exactly that binding away.
    acls(b, "--remove", "--force", "--allow-principal", "User:gone", "--operation", "Describe",
         "--topic", other)
    r = acls(b, "--list")
    assert "User:gone" not in r.out and "User:ops" in r.out, r.describe()
    report("kafka-acls.sh: --add/--list/--remove with --topic/--group/--cluster/prefixed/--deny-principal")

    # Phase 2: no super-user any more; the ACLs bind User:ANONYMOUS.
    secured.stop()
    secured.toml = NO_SUPER_USER
    secured.start()

    r = java_tool(CONSOLE_CONSUMER, "--bootstrap-server", b, "--topic", a, "--group", g,
                  "--from-beginning", "--max-messages", len(msgs), "--timeout-ms", 30000,
                  timeout=90, check=False)
    got = [l for l in r.out.splitlines() if l.startswith("acl-")]
    assert got == msgs, f"READ on {a} and {g} lets the consumer read: got {got}\n{r.describe()}"

    r = java_tool(CONSOLE_PRODUCER, "--bootstrap-server", b, "--topic", a,
                  "--producer-property", "max.block.ms=15000", "--producer-property",
                  "delivery.timeout.ms=15000", "--producer-property", "request.timeout.ms=10000",
                  input="denied\n", timeout=90, check=False)
    # The idempotent producer's InitProducerId needs WRITE on some topic (else Kafka answers
    # CLUSTER_AUTHORIZATION_FAILED); the produce itself would get TOPIC_AUTHORIZATION_FAILED.
    assert re.search(r"(Topic|Cluster)AuthorizationException", r.out + r.err), r.describe()
    assert high_watermark(b, a) == len(msgs), "nothing was appended"

    r = java_tool(CONSOLE_CONSUMER, "--bootstrap-server", b, "--topic", a, "--group", "another",
                  "--from-beginning", "--max-messages", 1, "--timeout-ms", 15000,
                  timeout=90, check=False)
    assert "GroupAuthorizationException" in r.out + r.err, r.describe()

    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", b, "--create", "--topic", unique_topic("x"),
                  "--partitions", 1, "--replication-factor", 1, timeout=60, check=False)
    assert r.returncode != 0 and "TopicAuthorizationException" in r.out + r.err, r.describe()

    r = acls(b, "--list", check=False)
    assert "ClusterAuthorizationException" in r.out + r.err, r.describe()

    r = java_tool(TOPIC_COMMAND, "--bootstrap-server", b, "--list", timeout=60)
    listed = set(r.out.split())
    assert a in listed and other not in listed, f"Metadata hides {other}: {listed}\n{r.describe()}"
    log = secured.log_text()
    assert "authorization denied" in log and "User:ANONYMOUS" in log
    report("ACLs after restart: consumer of a/g works; produce, other group, create, --list refused")
