"""The fault checker's verdicts on made-up histories (no broker): it must see every kind of
violation it claims to check, and pass a clean history. The checker itself runs against a real
cluster in scripts/test.sh (short schedule) and scripts/fault-checker-long.sh (100 faults)."""
from types import SimpleNamespace

import fault_checker as fc


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
