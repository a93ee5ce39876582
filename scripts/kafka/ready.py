"""Exits 0 when the Kafka broker at HOST PORT answers a Metadata request listing itself.

Used by start.sh to wait for the broker. Speaks the Kafka wire protocol directly (Metadata
v4, the oldest version Kafka 4 serves), so it needs no client library.
"""
import socket
import struct
import sys


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def main(host, port):
    client_id = b"weir-ready"
    correlation = 7
    # Header v1: api_key=3 (Metadata), api_version=4, correlation id, client id.
    header = struct.pack(">hhih", 3, 4, correlation, len(client_id)) + client_id
    # Body: topics = null (all topics), allow_auto_topic_creation = false.
    body = struct.pack(">ib", -1, 0)
    request = header + body
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.settimeout(3)
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", read_exact(sock, 4))[0]
        response = read_exact(sock, size)
    got_correlation, _throttle, brokers = struct.unpack(">iii", response[:12])
    if got_correlation != correlation or brokers < 1:
        return 1
    node_id, host_len = struct.unpack(">ih", response[12:18])
    broker_port = struct.unpack(">i", response[18 + host_len:22 + host_len])[0]
    return 0 if broker_port == port else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1], int(sys.argv[2])))
    except (OSError, ConnectionError, struct.error):
        sys.exit(1)
