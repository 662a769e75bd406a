"""A tiny hand-rolled Kafka wire-protocol codec for the bad-input tests.

Everything is big-endian. Only non-flexible ("classic") versions are encoded here, so strings are
int16 length + UTF-8 bytes (-1 = null) and arrays are int32 count + items.

    frame            = int32 size, then `size` bytes
    request header v1 = api_key i16, api_version i16, correlation_id i32, client_id nullable string
    request header v2 = header v1 + tagged fields (unsigned varint count, 0 here); used by the
                        flexible versions, e.g. ApiVersions v3+. A broker must parse it even for an
                        ApiVersions version it does not know, to answer UNSUPPORTED_VERSION.
    response header v0 = correlation_id i32

Request bodies written here:
    ApiVersions v0     (empty)
    Produce v7         transactional_id nullable string, acks i16, timeout_ms i32,
                       [topics: name string, [partitions: index i32, records bytes (i32 length)]]
    CreateTopics v2    [topics: name, num_partitions i32, replication_factor i16,
                       [assignments: partition i32, [broker_ids i32]], [configs: name, value]],
                       timeout_ms i32, validate_only bool
    ListOffsets v1     replica_id i32, [topics: name, [partitions: index i32, timestamp i64]]

Record batch v2 (the only on-disk/wire format Kafka >= 0.11 producers use):
    base_offset i64, batch_length i32 (bytes after this field), partition_leader_epoch i32,
    magic i8 (=2), crc u32 (CRC-32C of everything after the crc field), attributes i16,
    last_offset_delta i32, base_timestamp i64, max_timestamp i64, producer_id i64,
    producer_epoch i16, base_sequence i32, record_count i32, records...
    record = length varint, attributes i8, timestamp_delta varlong, offset_delta varint,
             key_length varint (-1 = null), key, value_length varint, value,
             header_count varint, headers (key_len varint, key, value_len varint, value)
    (varints are zig-zag encoded, as in protobuf sint32/sint64)
"""
import socket
import struct
import time

# --- API keys / error codes used by the tests ---------------------------------------------------
PRODUCE = 0
LIST_OFFSETS = 2
API_VERSIONS = 18
CREATE_TOPICS = 19

NONE = 0
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
UNSUPPORTED_VERSION = 35


# --- CRC-32C (Castagnoli), table driven, pure Python ---------------------------------------------
def _crc32c_table():
    poly = 0x82F63B78  # reversed 0x1EDC6F41
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


# --- primitive encoders ---------------------------------------------------------------------
def i8(v): return struct.pack(">b", v)
def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)


def string(s):
    """Classic (non-compact) nullable string: int16 length, -1 for None."""
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def bytes_field(b):
    """Classic nullable bytes: int32 length, -1 for None."""
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items):
    """Classic array: int32 count then the already-encoded items."""
    return i32(len(items)) + b"".join(items)


def varint(v):
    """Zig-zag varint (works for both varint and varlong)."""
    z = (v << 1) ^ (v >> 63)
    out = bytearray()
    while True:
        if z & ~0x7F:
            out.append((z & 0x7F) | 0x80)
            z >>= 7
        else:
            out.append(z)
            return bytes(out)


# --- record batch v2 ----------------------------------------------------------------------------
def record_batch(records, base_timestamp=None):
    """records: list of (key: bytes|None, value: bytes|None, headers: list[(str, bytes)]).
    Returns an uncompressed, non-idempotent (producer_id -1) record batch v2."""
    ts = int(time.time() * 1000) if base_timestamp is None else base_timestamp
    body = bytearray()
    for delta, (key, value, headers) in enumerate(records):
        r = bytearray()
        r += i8(0)                       # record attributes (unused)
        r += varint(0)                   # timestamp delta
        r += varint(delta)               # offset delta
        r += varint(-1) if key is None else varint(len(key)) + key
        r += varint(-1) if value is None else varint(len(value)) + value
        r += varint(len(headers))
        for hk, hv in headers:
            hk = hk.encode()
            r += varint(len(hk)) + hk + varint(len(hv)) + hv
        body += varint(len(r)) + r
    # the part covered by the CRC: attributes .. end
    after_crc = (i16(0)                      # attributes: no compression, CreateTime
                 + i32(len(records) - 1)     # last offset delta
                 + i64(ts) + i64(ts)         # base / max timestamp
                 + i64(-1) + i16(-1) + i32(-1)  # producer id / epoch / base sequence: none
                 + i32(len(records))
                 + bytes(body))
    after_length = i32(-1) + i8(2) + struct.pack(">I", crc32c(after_crc)) + after_crc
    return i64(0) + i32(len(after_length)) + after_length


# --- requests -----------------------------------------------------------------------------------
def request(api_key, api_version, correlation_id, body=b"", client_id="chronik-interop",
            header_version=1):
    """A complete size-prefixed request frame with request header v1 (or v2: + empty tagged fields)."""
    msg = i16(api_key) + i16(api_version) + i32(correlation_id) + string(client_id)
    if header_version >= 2:
        msg += b"\x00"  # no tagged fields
    msg += body
    return i32(len(msg)) + msg


def compact_string(s):
    """Flexible-version string: unsigned varint (length + 1), then the bytes."""
    b = s.encode()
    return _uvarint(len(b) + 1) + b


def _uvarint(v):
    out = bytearray()
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def api_versions_v3_body(software_name="chronik-interop", software_version="1.0"):
    """ApiVersions v3+ body: client_software_name, client_software_version (compact strings),
    tagged fields. This is what librdkafka and the Java client send first (v3 / v4)."""
    return compact_string(software_name) + compact_string(software_version) + b"\x00"


def produce_v7_body(topic, partition, records, acks=1, timeout_ms=10000):
    """records: the record batch bytes for that one partition."""
    return (string(None) + i16(acks) + i32(timeout_ms)
            + array([string(topic) + array([i32(partition) + bytes_field(records)])]))


def create_topics_v2_body(name, num_partitions=1, replication_factor=1, timeout_ms=10000):
    return (array([string(name) + i32(num_partitions) + i16(replication_factor)
                   + array([]) + array([])])
            + i32(timeout_ms) + i8(0))


def list_offsets_v1_body(topic, partition, timestamp=-1):
    """timestamp -1 = latest (the high watermark), -2 = earliest."""
    return i32(-1) + array([string(topic) + array([i32(partition) + i64(timestamp)])])


# --- response decoding --------------------------------------------------------------------------
class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def _take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def i16(self): return self._take(">h")
    def i32(self): return self._take(">i")
    def i64(self): return self._take(">q")

    def string(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def remaining(self):
        return len(self.data) - self.pos


def decode_api_versions_v0(body):
    """-> (error_code, {api_key: (min, max)}). Body starts after the correlation id."""
    r = Reader(body)
    err = r.i16()
    n = r.i32()
    keys = {}
    for _ in range(n):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        keys[k] = (lo, hi)
    return err, keys


def decode_produce_v7(body):
    """-> {(topic, partition): (error_code, base_offset)}; also checks the trailing throttle."""
    r = Reader(body)
    out = {}
    for _ in range(r.i32()):
        topic = r.string()
        for _ in range(r.i32()):
            index, err, base = r.i32(), r.i16(), r.i64()
            r.i64()  # log_append_time
            r.i64()  # log_start_offset
            out[(topic, index)] = (err, base)
    r.i32()  # throttle_time_ms
    return out


def decode_create_topics_v2(body):
    """-> {topic: (error_code, error_message)}"""
    r = Reader(body)
    r.i32()  # throttle_time_ms
    out = {}
    for _ in range(r.i32()):
        name, err, msg = r.string(), r.i16(), r.string()
        out[name] = (err, msg)
    return out


def decode_list_offsets_v1(body):
    """-> {(topic, partition): (error_code, offset)}"""
    r = Reader(body)
    out = {}
    for _ in range(r.i32()):
        topic = r.string()
        for _ in range(r.i32()):
            index, err = r.i32(), r.i16()
            r.i64()  # timestamp
            out[(topic, index)] = (err, r.i64())
    return out


# --- socket helpers -----------------------------------------------------------------------------
def connect(bootstrap, timeout=10.0):
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_exact(sock, n):
    """Read exactly n bytes; returns fewer (possibly b'') if the peer closed first."""
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(min(n - len(buf), 1 << 20))
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def read_response(sock):
    """Read one response frame -> (correlation_id, body) or None if the connection was closed
    before a whole frame arrived. Raises socket.timeout if the broker neither answers nor closes."""
    head = recv_exact(sock, 4)
    if len(head) < 4:
        return None
    size = struct.unpack(">i", head)[0]
    payload = recv_exact(sock, size)
    if len(payload) < size:
        return None
    return struct.unpack(">i", payload[:4])[0], payload[4:]


def wait_closed(sock, timeout=5.0):
    """True if the peer closes the connection (EOF or reset) within `timeout` seconds; any data
    that arrives first is read and discarded. False if it is still open at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not chunk:
            return True


def roundtrip(bootstrap, api_key, api_version, body=b"", correlation_id=1, timeout=10.0):
    """Open a connection, send one request, read one response -> body (after the correlation id).
    Fails loudly if the broker closes instead or answers with another correlation id."""
    with connect(bootstrap, timeout) as s:
        s.sendall(request(api_key, api_version, correlation_id, body))
        resp = read_response(s)
    assert resp is not None, f"broker closed the connection instead of answering api {api_key} v{api_version}"
    cid, rbody = resp
    assert cid == correlation_id, f"correlation id {cid}, expected {correlation_id}"
    return rbody


def api_versions_ok(bootstrap, timeout=10.0):
    """ApiVersions v0 on a fresh connection answers error 0 and lists ApiVersions (18)."""
    err, keys = decode_api_versions_v0(roundtrip(bootstrap, API_VERSIONS, 0, timeout=timeout))
    return err == NONE and API_VERSIONS in keys
