"""The fault checker's verdicts on made-up histories (no broker): it must see every kind of
violation it claims to check, and pass a clean history. The checker itself runs against a real
cluster in scripts/test.sh (short schedule) and scripts/fault-checker-long.sh (100 faults)."""
from types import SimpleNamespace

import fault_checker as fc
import txn_workload


def work(acked, attempted=None):
    attempted = set(attempted if attempted is not None else acked)
    return SimpleNamespace(run_id="r1", acked=dict(acked), attempted=attempted)


def rec(p, seq, run="r1"):
    return f"{run}:{p}:{seq}".encode()


def test_clean_history_passes():
    w = work({(0, 0): 0, (0, 1): 1, (1, 0): 0}, attempted={(0, 0), (0, 1), (1, 0), (1, 1)})
    records = {0: [(0, rec(0, 0)), (1, rec(0, 1))], 1: [(0, rec(1, 0)), (1, rec(1, 1))]}
    counts, problems = fc.check(w, records, {0: 2, 1: 2})
    assert problems == []
    assert counts["acknowledged"] == 3 and counts["read"] == 4 and counts["lost"] == 0
    assert counts["unacknowledged_but_read"] == 1  # an unacknowledged record may be in the log


def test_every_violation_is_reported():
    w = work({(0, 0): 0, (0, 1): 1, (0, 2): 2, (1, 0): 0}, attempted={(0, 0), (0, 1), (0, 2), (1, 0), (1, 5)})
    records = {
        0: [(0, rec(0, 0)), (1, rec(0, 2)), (2, rec(0, 1)), (3, rec(0, 1))],  # reordered + duplicate
        1: [(0, rec(1, 9)), (1, rec(1, 0, run="r0")), (2, rec(1, 5))],  # never produced x2, p1 seq 0 lost
    }
    counts, problems = fc.check(w, records, {0: 4, 1: 3})
    assert counts["lost"] == 1, problems
    assert counts["duplicated"] == 1, problems
    assert counts["never_produced"] == 2, problems
    assert counts["out_of_order"] >= 1, problems
    assert counts["ack_offset_mismatch"] >= 1, problems
    text = "\n".join(problems)
    assert "lost: partition 1 seq 0" in text and "never produced" in text and "out of order" in text


def txn_work(txns, run="r1"):
    return SimpleNamespace(run_id=run, txns=txns)


def test_transactional_clean_history_passes():
    w = txn_work([("committed", [(0, 0), (1, 0)]), ("aborted", [(0, 1), (1, 1)]),
                  ("unknown", [(0, 2), (1, 2)]), ("unknown", [(0, 3)])])
    # The committed one and the first unknown one are visible whole; the aborted one is not.
    records = {0: [(0, rec(0, 0)), (4, rec(0, 2))], 1: [(0, rec(1, 0)), (4, rec(1, 2))]}
    counts, problems = txn_workload.check(w, records)
    assert problems == []
    assert counts["records_committed"] == 2 and counts["committed_lost"] == 0
    assert counts["unknown_visible"] == 1 and counts["unknown_invisible"] == 1
    assert counts["read"] == 4


def test_transactional_violations_are_reported():
    w = txn_work([("committed", [(0, 0), (1, 0)]), ("aborted", [(0, 1)]), ("unknown", [(0, 2), (1, 1)])])
    records = {
        0: [(0, rec(0, 1)), (1, rec(0, 2)), (2, rec(0, 2)), (3, rec(0, 7))],  # aborted, dup, never produced
        1: [(0, rec(1, 0, run="r0"))],  # another run's record; p1 seq 0 of the committed txn lost
    }
    counts, problems = txn_workload.check(w, records)
    assert counts["committed_lost"] == 2, problems  # p0 seq 0 and p1 seq 0
    assert counts["aborted_visible"] == 1, problems
    assert counts["unknown_partial"] == 1, problems
    assert counts["duplicated"] == 1, problems
    assert counts["never_produced"] == 2, problems
    text = "\n".join(problems)
    assert "aborted transaction is visible" in text and "partly visible" in text and "lost: p0 seq 0" in text
