#!/usr/bin/env python3
"""Benchmark: the `[imds]` endpoint of `awscredd run`.

Starts the daemon (one credential_process profile, [imds] on a free loopback port) in a
temporary HOME, waits until it serves credentials, then:

- latency: 2,000 credentials GETs with a token on one keep-alive connection (how an SDK's
  connection pool asks); the median, p90, p99 and fastest;
- a refresh the way botocore does one: a token PUT, the role listing, the credentials, each
  on a new connection (a 401 or any 4xx closes it, a 200 keeps it; botocore opens fresh ones),
  500 times; the median and p99 of the three together;
- the daemon's RSS before and after 10,000 token PUTs (tokens are kept in memory, bounded).

Usage: imds_bench.py PATH_TO_AWSCREDD   (bench/imds.sh builds and calls it)
Every process it starts is stopped by PID; everything is removed at the end.
"""

import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

GETS = 2_000
REFRESHES = 500
PUTS = 10_000
ROLE = "/latest/meta-data/iam/security-credentials/"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def once(port, method, path, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers=headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def token(port, ttl="21600"):
    status, body = once(port, "PUT", "/latest/api/token",
                        {"X-aws-ec2-metadata-token-ttl-seconds": ttl})
    assert status == 200, status
    return body.decode()


def summary(ms):
    ms = sorted(ms)
    q = statistics.quantiles(ms, n=100)
    return (f"median {statistics.median(ms):.2f} ms, p90 {q[89]:.2f} ms, "
            f"p99 {q[98]:.2f} ms, fastest {ms[0]:.2f} ms")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    home = tempfile.mkdtemp(prefix="awscredd-imds-bench-")
    daemon = None
    try:
        script = os.path.join(home, "src.sh")
        with open(script, "w") as f:
            f.write(
                "#!/bin/sh\nprintf '{\"Version\":1,\"AccessKeyId\":\"ASIABENCH\","
                "\"SecretAccessKey\":\"s\",\"SessionToken\":\"t\",\"Expiration\":\"%s\","
                "\"AccountId\":\"111122223333\"}' "
                "$(date -u -d '3600 seconds' +%Y-%m-%dT%H:%M:%SZ)\n"
            )
        os.chmod(script, 0o755)
        port = free_port()
        config = os.path.join(home, "config.toml")
        with open(config, "w") as f:
            f.write(
                '[daemon]\nstate_dir = "state"\n[[output]]\npath = "credentials"\n'
                f'[profile.app]\ncredential_process = "{script}"\nregion = "eu-west-1"\n'
                f'[imds]\nlisten = "127.0.0.1:{port}"\nprofile = "app"\n'
            )
        env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "RUST_LOG": "warn"}
        log = open(os.path.join(home, "daemon.log"), "w")
        daemon = subprocess.Popen([binary, "--config", config, "run"], env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=log)
        deadline = time.monotonic() + 60
        while True:
            try:
                t = token(port)
                status, _ = once(port, "GET", ROLE + "app", {"X-aws-ec2-metadata-token": t})
                if status == 200:
                    break
            except (OSError, AssertionError):
                pass
            if time.monotonic() > deadline or daemon.poll() is not None:
                log.flush()
                sys.exit("the daemon did not serve:\n" + open(log.name).read()[-3000:])
            time.sleep(0.2)
        time.sleep(1)

        t = token(port)
        headers = {"X-aws-ec2-metadata-token": t}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        gets = []
        for _ in range(GETS):
            t0 = time.perf_counter()
            conn.request("GET", ROLE + "app", headers=headers)
            r = conn.getresponse()
            body = r.read()
            gets.append((time.perf_counter() - t0) * 1000)
            assert r.status == 200 and b"ASIABENCH" in body, (r.status, body)
            if r.getheader("connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.close()
        print(f"credentials GET, {GETS:,} on one keep-alive connection: {summary(gets)}")

        refreshes = []
        for _ in range(REFRESHES):
            t0 = time.perf_counter()
            tk = token(port)
            h = {"X-aws-ec2-metadata-token": tk}
            status, role = once(port, "GET", ROLE, h)
            assert status == 200, status
            status, _ = once(port, "GET", ROLE + role.decode(), h)
            assert status == 200, status
            refreshes.append((time.perf_counter() - t0) * 1000)
        print(f"a refresh as botocore does it (token PUT, role, credentials; a connection "
              f"each), {REFRESHES:,} times: {summary(refreshes)}")

        rss_before = rss_kib(daemon.pid)
        t0 = time.perf_counter()
        for _ in range(PUTS):
            token(port)
        secs = time.perf_counter() - t0
        rss_after = rss_kib(daemon.pid)
        print(f"{PUTS:,} token PUTs in {secs:.1f} s ({PUTS / secs:,.0f}/s); RSS "
              f"{rss_before:,} KiB before, {rss_after:,} KiB after "
              f"({rss_after - rss_before:+,} KiB; at most 4,096 tokens are kept)")
        return 0
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
