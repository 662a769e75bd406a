"""kcat (Debian's 1.7.1 on librdkafka 2.0.2): produce with keys and headers, consume them back."""
from helpers import create_topic, high_watermark, kcat, unique_topic


def test_kcat_keys_values_headers_roundtrip(broker):
    b = broker.bootstrap
    t = unique_topic("kcat")
    create_topic(b, t, 1)
    n = 200
    rows = [(f"key-{i:03d}", f"value {i} {'x' * (i % 17)}") for i in range(n)]
    r = kcat("-b", b, "-P", "-t", t, "-p", 0, "-K:", "-H", "a=b", "-H", "trace=id-42",
             input="".join(f"{k}:{v}\n" for k, v in rows), timeout=60)
    assert "Delivery failed" not in r.err and "ERROR" not in r.err, r.describe()
    assert high_watermark(b, t) == n

    r = kcat("-b", b, "-C", "-t", t, "-p", 0, "-o", "beginning", "-e", "-q",
             "-f", "%k|%s|%h\\n", timeout=60)
    got = r.out.splitlines()
    assert got == [f"{k}|{v}|a=b,trace=id-42" for k, v in rows], r.describe()
