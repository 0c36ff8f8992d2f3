#!/usr/bin/env python3
"""Benchmark: `/metrics` of `awscredd run` with 500 profiles.

Starts the daemon (500 credential_process profiles in one credentials file, [metrics] on a
free loopback port) in a temporary HOME, waits until /readyz says every profile is ok, then:

- latency: 1,000 scrapes of /metrics, one keep-alive connection as Prometheus scrapes; the
  median, p90, p99 and fastest;
- memory: the daemon's RSS (VmRSS) before the first scrape, after those 1,000, and after
  10,000 more (each on a new connection); it must not grow past the warm-up.

Usage: metrics_bench.py PATH_TO_AWSCREDD   (bench/metrics.sh builds and calls it)
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

PROFILES = 500
LATENCY_SCRAPES = 1_000
MEMORY_SCRAPES = 10_000


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


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    home = tempfile.mkdtemp(prefix="awscredd-metrics-bench-")
    daemon = None
    try:
        script = os.path.join(home, "src.sh")
        with open(script, "w") as f:
            f.write(
                "#!/bin/sh\nprintf '{\"Version\":1,\"AccessKeyId\":\"ASIABENCH\","
                "\"SecretAccessKey\":\"s\",\"SessionToken\":\"t\",\"Expiration\":\"%s\"}' "
                "$(date -u -d '3600 seconds' +%Y-%m-%dT%H:%M:%SZ)\n"
            )
        os.chmod(script, 0o755)
        port = free_port()
        text = (
            '[daemon]\nstate_dir = "state"\n[[output]]\npath = "credentials"\n'
            f'[metrics]\nlisten = "127.0.0.1:{port}"\n'
        )
        for i in range(PROFILES):
            text += f'[profile.p{i:04d}]\ncredential_process = "{script}"\n'
        config = os.path.join(home, "config.toml")
        with open(config, "w") as f:
            f.write(text)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "RUST_LOG": "warn"}
        log = open(os.path.join(home, "daemon.log"), "w")
        started = time.monotonic()
        daemon = subprocess.Popen(
            [binary, "--config", config, "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        deadline = time.monotonic() + 180
        while True:
            try:
                status, _ = get(port, "/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or daemon.poll() is not None:
                log.flush()
                sys.exit("the daemon did not get ready:\n" + open(log.name).read()[-3000:])
            time.sleep(0.2)
        print(f"ready with {PROFILES} profiles after {time.monotonic() - started:.1f} s")
        time.sleep(1)  # let the pass's after-work settle
        rss_before = rss_kib(daemon.pid)

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        times = []
        body = b""
        for _ in range(LATENCY_SCRAPES):
            t0 = time.perf_counter()
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            body = r.read()
            times.append(time.perf_counter() - t0)
            assert r.status == 200, r.status
            # The server closes a keep-alive connection after its lifetime (60 s).
            if r.getheader("connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.close()
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        rss_warm = rss_kib(daemon.pid)

        t0 = time.perf_counter()
        for _ in range(MEMORY_SCRAPES):
            status, _ = get(port, "/metrics")
            assert status == 200, status
        memory_secs = time.perf_counter() - t0
        rss_after = rss_kib(daemon.pid)

        ms = sorted(t * 1000 for t in times)
        q = statistics.quantiles(ms, n=100)
        print(f"/metrics: {len(body):,} bytes, {series:,} series")
        print(
            f"latency over {LATENCY_SCRAPES:,} scrapes (keep-alive): median {statistics.median(ms):.2f} ms, "
            f"p90 {q[89]:.2f} ms, p99 {q[98]:.2f} ms, fastest {ms[0]:.2f} ms"
        )
        print(
            f"{MEMORY_SCRAPES:,} more scrapes, a connection each: {memory_secs:.1f} s "
            f"({MEMORY_SCRAPES / memory_secs:,.0f}/s)"
        )
        print(
            f"RSS: {rss_before:,} KiB before the first scrape, {rss_warm:,} KiB after "
            f"{LATENCY_SCRAPES:,}, {rss_after:,} KiB after {MEMORY_SCRAPES:,} more "
            f"({rss_after - rss_warm:+,} KiB)"
        )
        grew = rss_after - rss_warm > 512
        print("RSS after the warm-up:", "GREW" if grew else "flat (within 512 KiB)")
        return 1 if grew else 0
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
