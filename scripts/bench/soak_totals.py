#!/usr/bin/env python3
"""The soak's end: netio's records summed against the servers' own counts.

    soak_totals.py NETIO_LOG FORK_OUT LONG_OUT CLIENT_OUT >> results.tsv

NETIO_LOG is netio's JSON output (one record a line); FORK_OUT and LONG_OUT
end with a server's ground truth ({"sent","received","connections"}), and
CLIENT_OUT is the client's summary. Writes results.tsv lines (section soak):
the totals of both sides, the records by kind, and which heavy clients
(127.2.0.0/16) raised a per-peer threshold under their own address.
"""
import json
import sys
from collections import Counter


def last_json(path):
    """The last line of a file that is a JSON object."""
    found = {}
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            found = json.loads(line)
    return found


def main():
    log, fork_out, long_out, client_out = sys.argv[1:5]
    sent = received = 0
    kinds, degraded, scopes = Counter(), Counter(), Counter()
    heavy_raised, other_breaches = set(), 0
    other_records = 0
    for line in open(log):
        try:
            r = json.loads(line)
        except ValueError:
            kinds["unreadable"] += 1
            continue
        kind = r.get("NETIO_EVENT", "")
        kinds[kind] += 1
        if kind == "traffic":
            scope = r.get("NETIO_SCOPE", "")
            scopes[scope] += 1
            if scope == "target" and r.get("NETIO_TARGET") == "soak":
                sent += int(r.get("NETIO_SENT_BYTES", 0))
                received += int(r.get("NETIO_RECEIVED_BYTES", 0))
            if scope == "peer" and r.get("NETIO_PEER_ADDRESS") == "other":
                other_records += 1
        elif kind == "degraded":
            degraded[r.get("NETIO_REASON", "")] += 1
        elif kind == "threshold_exceeded":
            peer = r.get("NETIO_PEER_ADDRESS", "")
            if peer.startswith("127.2."):
                heavy_raised.add(peer)
            elif peer == "other":
                other_breaches += 1
    fork, long_, client = last_json(fork_out), last_json(long_out), last_json(client_out)
    rows = [
        ("totals", "netio_sent", sent),
        ("totals", "netio_received", received),
        ("totals", "truth_sent", fork.get("sent", 0) + long_.get("sent", 0)),
        ("totals", "truth_received", fork.get("received", 0) + long_.get("received", 0)),
        ("totals", "fork_connections", fork.get("connections", 0)),
        ("totals", "long_connections", long_.get("connections", 0)),
        ("totals", "client_addresses", client.get("addresses", 0)),
        ("totals", "client_failures", client.get("failures", 0)),
        ("totals", "heavy_clients", client.get("heavy_clients", 0)),
        ("totals", "heavy_raised", len(heavy_raised)),
        ("totals", "other_breaches", other_breaches),
        ("totals", "other_peer_records", other_records),
        ("totals", "records", sum(kinds.values())),
    ]
    rows += [("client", k, client.get(k, 0)) for k in
             ("seconds", "fork_conns", "long_conns", "up", "down", "heavy_every", "heavy_secs",
              "heavy_rate")]
    rows += [("kinds", k or "none", n) for k, n in sorted(kinds.items())]
    rows += [("scopes", k or "none", n) for k, n in sorted(scopes.items())]
    rows += [("degraded", k or "none", n) for k, n in sorted(degraded.items())]
    for name, metric, value in rows:
        print(f"soak\t{name}\t1\t{metric}\t{value}")


if __name__ == "__main__":
    main()
