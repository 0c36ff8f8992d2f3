"""A TLS front for a plain-HTTP server on 127.0.0.1, for packaging/static-test.sh: terminates
TLS with the given certificate and forwards each connection's bytes to the upstream port.
Prints its own port on stdout, then serves until killed. Counts nothing, decides nothing: a
client that does not trust the certificate simply fails its handshake (logged on stderr).

    python3 tls-forward.py CERT KEY UPSTREAM_PORT
"""
import socket
import ssl
import sys
import threading


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, ctx, upstream):
    conn.settimeout(30)
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as e:
        print(f"tls-forward: handshake failed: {e}", file=sys.stderr, flush=True)
        conn.close()
        return
    up = socket.create_connection(("127.0.0.1", upstream), timeout=30)
    threading.Thread(target=pipe, args=(up, tls), daemon=True).start()
    pipe(tls, up)


def main():
    cert, key, upstream = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    print(ls.getsockname()[1], flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn, ctx, upstream), daemon=True).start()


if __name__ == "__main__":
    main()
