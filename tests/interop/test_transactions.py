"""The transaction coordinator with real Kafka 4.4 clients (the partition side of transactions,
markers and read_committed, is another branch's: these clients need no markers).

- `kafka-transactions.sh` (org.apache.kafka.tools.TransactionsCommand): `list` and
  `describe --transactional-id` show what the coordinator holds;
- a Java transactional producer (tests/interop/txn/TxnOffsets.java) that only commits consumer
  offsets: initTransactions, sendOffsetsToTransaction + abort (the offset stays uncommitted),
  + commit (it becomes the group's committed offset), and a second producer with the same
  transactional.id fences the first (ProducerFencedException).
"""
import re
import shutil

from helpers import JAVA_OPTS, REPO, TOOLS_LIB, create_topic, java_tool, run, unique_topic

TRANSACTIONS_COMMAND = "org.apache.kafka.tools.TransactionsCommand"
GROUP_COMMAND = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
SOURCE = REPO / "tests" / "interop" / "txn" / "TxnOffsets.java"


def compile_app(tmp_path):
    java, javac = shutil.which("java"), shutil.which("javac")
    assert java and javac, "java/javac not on PATH; install them with scripts/install-test-deps.sh"
    classes = tmp_path / "classes"
    classes.mkdir()
    run([javac, "-d", str(classes), "-cp", f"{TOOLS_LIB}/*", str(SOURCE)], timeout=120)
    return [java, *JAVA_OPTS, "-cp", f"{classes}:{TOOLS_LIB}/*", "TxnOffsets"]


def committed_offset(bootstrap, group, topic):
    r = java_tool(GROUP_COMMAND, "--bootstrap-server", bootstrap, "--describe", "--group", group,
                  "--offsets", timeout=60, check=False)
    m = re.search(rf"^{re.escape(group)}\s+{re.escape(topic)}\s+0\s+(\S+)", r.out, re.M)
    return m.group(1) if m else None, r


def test_java_transactional_offsets_and_the_transactions_command(broker, tmp_path):
    b = broker.bootstrap
    topic = unique_topic("txoff")
    create_topic(b, topic, 1)
    txn_id, group = f"{topic}-producer", f"{topic}-group"
    r = run([*compile_app(tmp_path), b, txn_id, group, topic], timeout=180)
    lines = r.out.split()
    assert lines == ["INIT", "ABORTED", "COMMITTED", "SECOND", "INIT", "FENCED"], r.describe()

    offset, g = committed_offset(b, group, topic)
    assert offset == "7", f"the committed transaction's offset, not the aborted 42:\n{g.describe()}"

    r = java_tool(TRANSACTIONS_COMMAND, "--bootstrap-server", b, "list", timeout=60)
    row = [line.split() for line in r.out.splitlines() if line.startswith(txn_id)]
    assert row, r.describe()
    # TransactionalId Coordinator ProducerId TransactionState
    assert row[0][3] == "Empty", f"the second producer's InitProducerId left it Empty:\n{r.describe()}"

    r = java_tool(TRANSACTIONS_COMMAND, "--bootstrap-server", b, "describe", "--transactional-id", txn_id,
                  timeout=60)
    header, values = r.out.splitlines()[0].split("\t"), r.out.splitlines()[1].split("\t")
    described = dict(zip([h.strip() for h in header], [v.strip() for v in values]))
    assert described["TransactionalId"] == txn_id, r.describe()
    assert described["TransactionState"] == "Empty", r.describe()
    assert described["TransactionTimeoutMs"] == "60000", r.describe()
    # Two producers: epoch 0 (first), a bump per InitProducerId.
    assert int(described["ProducerEpoch"]) >= 1, r.describe()

    r = java_tool(TRANSACTIONS_COMMAND, "--bootstrap-server", b, "describe", "--transactional-id",
                  "no-such-transactional-id", timeout=60, check=False)
    assert r.returncode != 0 and "could not be found" in (r.out + r.err), r.describe()
