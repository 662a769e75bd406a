"""Hand-built, malformed or refused Kafka requests on raw sockets.

For every case the broker must answer with its Kafka error or close the connection, stay up (a
fresh connection still gets an ApiVersions v0 answer) and write nothing (the canary topic's high
watermark is unchanged)."""
import socket

import pytest

import kafka_wire as kw
from helpers import create_topic, high_watermark, kcat, need_module, unique_topic

CANARY_MESSAGES = 3


@pytest.fixture
def canary(broker):
    """A 1-partition topic holding CANARY_MESSAGES records, written by kcat."""
    t = unique_topic("canary")
    create_topic(broker.bootstrap, t, 1)
    kcat("-b", broker.bootstrap, "-P", "-t", t, "-p", 0,
         input="".join(f"canary {i}\n" for i in range(CANARY_MESSAGES)))
    assert high_watermark(broker.bootstrap, t) == CANARY_MESSAGES
    return t


def assert_unharmed(broker, topic, hwm=CANARY_MESSAGES):
    assert broker.alive(), "broker died"
    assert kw.api_versions_ok(broker.bootstrap), "ApiVersions v0 on a fresh connection failed"
    assert high_watermark(broker.bootstrap, topic) == hwm, "something was written"


def batch(n=1, value_size=16, tag=b"v"):
    return kw.record_batch([(b"k%d" % i, tag + b"%d-" % i + b"x" * value_size, [("h", b"1")])
                            for i in range(n)])


def produce_v7(bootstrap, topic, records, correlation_id=7):
    body = kw.roundtrip(bootstrap, kw.PRODUCE, 7,
                        kw.produce_v7_body(topic, 0, records, acks=1), correlation_id)
    return kw.decode_produce_v7(body)


def test_valid_produce_v7_control(broker, canary):
    """The hand-built encoder is right: a well-formed batch is accepted (control for the cases below)."""
    res = produce_v7(broker.bootstrap, canary, batch(n=2))
    assert res == {(canary, 0): (kw.NONE, CANARY_MESSAGES)}
    assert_unharmed(broker, canary, CANARY_MESSAGES + 2)
    r = kcat("-b", broker.bootstrap, "-C", "-t", canary, "-p", 0, "-o", CANARY_MESSAGES, "-e", "-q",
             "-f", "%k|%s|%h\\n")
    assert r.out.splitlines() == ["k0|v0-" + "x" * 16 + "|h=1", "k1|v1-" + "x" * 16 + "|h=1"]


def test_size_prefix_over_max_request_size_closes(broker, canary):
    with kw.connect(broker.bootstrap) as s:
        s.sendall(kw.i32(200 * 1024 * 1024))  # 200 MB announced, nothing follows
        assert kw.wait_closed(s, timeout=5), "connection not closed after a 200 MB size prefix"
    assert_unharmed(broker, canary)


def test_truncated_frame_closes(broker, canary):
    frame = kw.request(kw.PRODUCE, 7, 1, kw.produce_v7_body(canary, 0, batch()))
    with kw.connect(broker.bootstrap) as s:
        s.sendall(kw.i32(100) + frame[4:14])  # size says 100, only 10 bytes follow
        s.shutdown(socket.SHUT_WR)
        assert kw.wait_closed(s, timeout=5), "connection not closed after a truncated frame + EOF"
    assert_unharmed(broker, canary)


def test_unknown_api_key_closes(broker, canary):
    with kw.connect(broker.bootstrap) as s:
        s.sendall(kw.request(9999, 0, 1))
        assert kw.wait_closed(s, timeout=5), "connection not closed after api key 9999"
    assert_unharmed(broker, canary)


def test_api_versions_unsupported_version_answers_35_in_v0_layout(broker, canary):
    # Framed as a client would frame a too-new ApiVersions: flexible request header v2 and a v3+
    # body. (With header v1 Kafka fails to parse the header and closes the connection.)
    with kw.connect(broker.bootstrap) as s:
        s.sendall(kw.request(kw.API_VERSIONS, 99, 11, kw.api_versions_v3_body(), header_version=2))
        resp = kw.read_response(s)
        assert resp is not None, "connection closed instead of the UNSUPPORTED_VERSION answer"
        cid, body = resp
        assert cid == 11
        err, keys = kw.decode_api_versions_v0(body)
        assert err == kw.UNSUPPORTED_VERSION, f"error code {err}, expected 35"
        assert len(keys) > 0 and kw.API_VERSIONS in keys, f"api keys {keys}"
        lo, hi = keys[kw.API_VERSIONS]
        assert lo == 0 <= hi, f"ApiVersions range {lo}..{hi} must start at 0"
        # clients retry on the same connection at a version the broker advertised
        s.sendall(kw.request(kw.API_VERSIONS, 0, 12))
        resp = kw.read_response(s)
        assert resp is not None and resp[0] == 12, "no answer to ApiVersions v0 after the v99 refusal"
        assert kw.decode_api_versions_v0(resp[1])[0] == kw.NONE
    assert_unharmed(broker, canary)


def test_produce_unsupported_version_closes_or_35(broker, canary):
    with kw.connect(broker.bootstrap) as s:
        s.sendall(kw.request(kw.PRODUCE, 99, 21, kw.produce_v7_body(canary, 0, batch())))
        try:
            resp = kw.read_response(s)
        except socket.timeout:
            pytest.fail("Produce v99: the broker neither answered nor closed within 10 s")
        if resp is not None:  # an answer instead of a close: it must carry error 35
            cid, body = resp
            assert cid == 21
            codes = set()
            if len(body) >= 2:
                codes.add(kw.Reader(body).i16())  # a top-level error code first
            try:  # or a Produce-shaped answer with per-partition errors
                codes |= {e for e, _ in kw.decode_produce_v7(body).values()}
            except Exception:
                pass
            assert kw.UNSUPPORTED_VERSION in codes, f"answer without error 35: {body[:64]!r}"
    assert_unharmed(broker, canary)


def test_corrupted_crc_is_corrupt_message(broker, canary):
    good = batch(n=3, tag=b"flipme")
    i = good.find(b"flipme1")
    assert i > 61, "record value not found after the batch header"
    bad = bytearray(good)
    bad[i] ^= 0x20  # 'f' -> 'F' inside a record value: the CRC no longer matches
    res = produce_v7(broker.bootstrap, canary, bytes(bad))
    assert res == {(canary, 0): (kw.CORRUPT_MESSAGE, -1)}, f"expected CORRUPT_MESSAGE (2): {res}"
    assert_unharmed(broker, canary)


def test_invalid_topic_name_create_topics_is_17(broker, canary):
    body = kw.roundtrip(broker.bootstrap, kw.CREATE_TOPICS, 2, kw.create_topics_v2_body("bad name!"))
    res = kw.decode_create_topics_v2(body)
    assert "bad name!" in res and res["bad name!"][0] == kw.INVALID_TOPIC_EXCEPTION, res
    assert_unharmed(broker, canary)
    assert "bad name!" not in list_topics(broker.bootstrap)


def test_invalid_topic_name_produce_is_refused(broker, canary):
    # chronik answers INVALID_TOPIC_EXCEPTION (17); Apache Kafka, which never creates topics on
    # Produce, answers UNKNOWN_TOPIC_OR_PARTITION (3) for any topic it does not have.
    res = produce_v7(broker.bootstrap, "bad/name", batch())
    assert set(res) == {("bad/name", 0)}, res
    err, _ = res[("bad/name", 0)]
    assert err in (kw.INVALID_TOPIC_EXCEPTION, kw.UNKNOWN_TOPIC_OR_PARTITION), f"error {err}"
    assert_unharmed(broker, canary)
    assert "bad/name" not in list_topics(broker.bootstrap)


def test_batch_over_max_message_size_is_message_too_large(broker, canary):
    big = kw.record_batch([(b"big", b"B" * (1200 * 1024), [])])  # ~1.2 MB > 1048588
    assert len(big) > 1048588
    res = produce_v7(broker.bootstrap, canary, big)
    assert res == {(canary, 0): (kw.MESSAGE_TOO_LARGE, -1)}, f"expected MESSAGE_TOO_LARGE (10): {res}"
    assert_unharmed(broker, canary)


def list_topics(bootstrap):
    ck_admin = need_module("confluent_kafka.admin")
    return set(ck_admin.AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


@pytest.mark.parametrize("api_key,version,count", [
    (19, 2, 0x7fffffff),  # CreateTopics v2: topics array
    (3, 0, 0x033c0c00),   # Metadata v0: topics array (54 M entries)
    (0, 7, 0x7fffffff),   # Produce v7: topic_data array (after transactional id, acks, timeout)
])
def test_huge_array_count_in_a_tiny_request(broker, canary, api_key, version, count):
    """An array count of up to 2^31 in a request of a few bytes: the decoder used to reserve room
    for that many elements before reading any (hundreds of GiB: the process aborted). Found by
    fuzz/fuzz_targets/kafka_request.rs. Now: a decode error, the connection is closed, nothing else."""
    body = kw.i32(count)
    if api_key == 0:
        body = kw.string(None) + kw.i16(1) + kw.i32(1000) + kw.i32(count)
    with kw.connect(broker.bootstrap) as s:
        s.sendall(kw.request(api_key, version, 5, body))
        assert kw.wait_closed(s, timeout=10), "connection not closed"
    assert_unharmed(broker, canary)
