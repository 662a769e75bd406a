"""The fault checker's transactional mode (`fault_checker.py --transactional`, issue 12): a
confluent-kafka transactional producer writes transactions of `RUN:partition:seq` records over
every partition and commits or aborts each one (one in three aborted on purpose) while the fault
schedule runs; a read_committed consumer then reads everything back.

What each transaction became, as the producer saw it:
  committed  commit_transaction() returned: every record must be visible, exactly once
  aborted    abort_transaction() returned, or the transaction was abandoned before its commit
             was sent: no record may be visible
  unknown    commit_transaction() failed (a fault in the middle of the commit): all of its records
             are visible, or none; never a part
A producer that hits a fatal error (fenced, or its epoch bumped by a timeout) is replaced by a new
one with the same transactional.id, which fences the old one and aborts what it left open.
"""
import threading
import time
from collections import Counter, defaultdict


class TxnWorkload:
    """Transactions of `per_txn` records, one record per partition in turn."""

    def __init__(self, ck, bootstrap, topic, partitions, run_id, rate, per_txn=12, log=print):
        self.ck, self.bootstrap, self.topic = ck, bootstrap, topic
        self.partitions, self.run_id, self.rate, self.per_txn = partitions, run_id, rate, per_txn
        self.log = log
        self.next_seq = [0] * partitions
        self.txns = []  # [(state, [(partition, seq)])]; state: committed | aborted | unknown
        self.failed = Counter()
        self.producers = 0
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def new_producer(self):
        self.producers += 1
        p = self.ck.Producer({
            "bootstrap.servers": self.bootstrap, "transactional.id": f"checker-{self.run_id}",
            "transaction.timeout.ms": 10000, "message.timeout.ms": 9000, "request.timeout.ms": 5000,
            "socket.timeout.ms": 5000, "metadata.max.age.ms": 2000, "linger.ms": 5,
            "retry.backoff.ms": 100, "reconnect.backoff.max.ms": 1000, "client.id": f"txn-checker-{self.run_id}"})
        deadline = time.monotonic() + 120
        while True:
            try:
                p.init_transactions(30)
                return p
            except self.ck.KafkaException as e:
                self.failed[f"init_transactions: {e.args[0].name()}"] += 1
                if time.monotonic() > deadline or not e.args[0].retriable():
                    raise
                time.sleep(0.5)

    def one(self, prod, rng_abort):
        """One transaction; returns (state, records, producer still usable)."""
        records = []
        try:
            prod.begin_transaction()
            for _ in range(self.per_txn):
                p = (sum(self.next_seq)) % self.partitions
                seq = self.next_seq[p]
                self.next_seq[p] += 1
                records.append((p, seq))
                prod.produce(self.topic, value=f"{self.run_id}:{p}:{seq}".encode(), partition=p)
                prod.poll(0)
        except (self.ck.KafkaException, BufferError) as e:
            self.failed[f"produce: {e}"] += 1
            return self.abort(prod, records)
        if rng_abort:
            return self.abort(prod, records)
        try:
            prod.commit_transaction(30)
            return "committed", records, True
        except self.ck.KafkaException as e:
            err = e.args[0]
            self.failed[f"commit: {err.name()}"] += 1
            if err.txn_requires_abort():
                # The commit was not sent (an earlier produce failed): abort it.
                return self.abort(prod, records)
            if err.retriable():
                # The commit may or may not have been written; retrying it is Kafka's answer.
                try:
                    prod.commit_transaction(30)
                    return "committed", records, True
                except self.ck.KafkaException as e2:
                    self.failed[f"commit retry: {e2.args[0].name()}"] += 1
            return "unknown", records, False

    def abort(self, prod, records):
        try:
            prod.abort_transaction(30)
            return "aborted", records, True
        except self.ck.KafkaException as e:
            self.failed[f"abort: {e.args[0].name()}"] += 1
            # Not known to be aborted: the next producer's init aborts it, unless its commit
            # was never sent, which is the case here (abort is only called before a commit).
            return "aborted", records, False

    def run(self):
        prod = self.new_producer()
        n = 0
        while not self.stop_flag.is_set():
            t0 = time.monotonic()
            state, records, usable = self.one(prod, rng_abort=(n % 3 == 2))
            n += 1
            with self.lock:
                self.txns.append((state, records))
            if not usable:
                self.log(f"transactional producer unusable after a {state} transaction; a new one")
                prod = self.new_producer()
            delay = self.per_txn / self.rate - (time.monotonic() - t0)
            if delay > 0:
                time.sleep(delay)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stop_flag.set()
        self.thread.join(timeout=180)

    def acknowledged(self):
        with self.lock:
            return sum(len(r) for s, r in self.txns if s == "committed")


def scan(records, run_id, produced, problems):
    """Walks a read-back `{p: [(offset, value)]}` of `RUN:partition:seq` records (both checkers'
    workloads write them). Unparsable records, records of another run or partition and those
    `produced(p, seq)` denies are reported as never produced; a seq at or below an earlier one
    of its partition as out of order. Returns ([(p, offset, seq)] of this run's records in read
    order, never-produced count, out-of-order count)."""
    good, unexpected, order = [], 0, 0
    for p in sorted(records):
        last = -1
        for offset, value in records[p]:
            try:
                run, vp, seq = value.decode().split(":")
                vp, seq = int(vp), int(seq)
            except (ValueError, AttributeError):
                unexpected += 1
                problems.append(f"p{p}@{offset}: unparsable record {value!r}")
                continue
            if run != run_id or vp != p or not produced(p, seq):
                unexpected += 1
                problems.append(f"p{p}@{offset}: record {value!r} was never produced")
                continue
            good.append((p, offset, seq))
            if seq <= last:
                order += 1
                if order <= 20:
                    problems.append(f"p{p}@{offset}: seq {seq} after seq {last} (out of order)")
            last = max(last, seq)
    return good, unexpected, order


def check(work, records):
    """(counts, problems) of a read_committed read-back `{p: [(offset, value)]}`."""
    problems = []
    good, unexpected, order = scan(records, work.run_id, lambda p, seq: True, problems)
    seen = Counter((p, seq) for p, _, seq in good)
    counts = defaultdict(int)
    produced = set()
    for state, recs in work.txns:
        counts[f"txns_{state}"] += 1
        visible = [k for k in recs if seen[k]]
        produced.update(recs)
        if state == "committed":
            counts["records_committed"] += len(recs)
            missing = [k for k in recs if not seen[k]]
            counts["committed_lost"] += len(missing)
            for k in missing[:5]:
                problems.append(f"lost: p{k[0]} seq {k[1]} of a committed transaction")
        elif state == "aborted":
            counts["aborted_visible"] += len(visible)
            for k in visible[:5]:
                problems.append(f"p{k[0]} seq {k[1]} of an aborted transaction is visible")
        else:
            if visible and len(visible) != len(recs):
                counts["unknown_partial"] += 1
                problems.append(f"a transaction of unknown outcome is partly visible: {len(visible)} of {len(recs)}")
            counts["unknown_visible" if visible else "unknown_invisible"] += 1
    stray = [k for k in seen if k not in produced]
    counts["never_produced"] = unexpected + len(stray)
    problems += [f"p{k[0]} seq {k[1]} read but never produced" for k in stray[:5]]
    dup = sum(n - 1 for n in seen.values() if n > 1)
    counts["duplicated"] = dup
    if dup:
        problems.append(f"{dup} duplicated record(s)")
    counts["out_of_order"] = order
    counts["read"] = sum(seen.values())
    return dict(counts), problems
