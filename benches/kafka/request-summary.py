#!/usr/bin/env python3
"""Summarise which Kafka APIs (and versions) each client sent, from a Kafka broker log written with
request logging on:

    KAFKA_JVM_OPTS=-Dorg.slf4j.simpleLogger.log.kafka.request.logger=debug \
        benches/kafka/start-kafka.sh 39092 /tmp/kdata
    ... run clients (give each a distinctive client.id) ...
    python3 benches/kafka/request-summary.py /tmp/kdata/kafka.log [CLIENT_ID_SUBSTRING]

Prints, per client id, each API name with the versions seen and a count. Controller-internal
traffic (the CONTROLLER listener) is left out.
"""
import json
import sys
from collections import defaultdict

def main():
    path = sys.argv[1]
    want = sys.argv[2] if len(sys.argv) > 2 else None
    seen = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    order = defaultdict(list)
    with open(path, errors="replace") as f:
        for line in f:
            i = line.find("Completed request:")
            if i < 0:
                continue
            try:
                rec = json.loads(line[i + len("Completed request:"):])
            except ValueError:
                continue
            if rec.get("listener") == "CONTROLLER":
                continue
            h = rec["requestHeader"]
            cid = h.get("clientId") or "<none>"
            if want and want not in cid:
                continue
            name = h.get("requestApiKeyName", str(h["requestApiKey"]))
            if name not in order[cid]:
                order[cid].append(name)
            seen[cid][name][h["requestApiVersion"]] += 1
    for cid in seen:
        print(f"client.id={cid}")
        for name in order[cid]:
            vers = ", ".join(f"v{v} x{n}" for v, n in sorted(seen[cid][name].items()))
            print(f"    {name:28s} {vers}")

if __name__ == "__main__":
    main()
