"""A DNS server on 127.0.0.1:53 (UDP) that answers every A query with 127.0.0.1 and every
other query with no records, for packaging/static-test.sh: it shows that the static binary
resolves names through /etc/resolv.conf. Prints "ready" on stdout, then serves until killed.

    python3 fake-dns.py
"""
import socket
import struct
import sys


def answer(query):
    if len(query) < 12:
        return None
    qid, _flags, qdcount = struct.unpack(">HHH", query[:6])
    if qdcount != 1:
        return None
    # The question: labels up to the zero byte, then QTYPE and QCLASS.
    end = 12
    while end < len(query) and query[end] != 0:
        end += query[end] + 1
    question = query[12 : end + 5]
    if len(question) < 5:
        return None
    qtype = struct.unpack(">H", question[-4:-2])[0]
    records = []
    if qtype == 1:  # A
        # A pointer to the question's name, type A, class IN, TTL 60, 4 bytes: 127.0.0.1.
        records.append(struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("127.0.0.1"))
    header = struct.pack(">HHHHHH", qid, 0x8180, 1, len(records), 0, 0)
    return header + question + b"".join(records)


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 53))
    print("ready", flush=True)
    while True:
        data, peer = s.recvfrom(512)
        reply = answer(data)
        if reply:
            s.sendto(reply, peer)
        print(f"fake-dns: query from {peer}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
