#!/usr/bin/env python3
"""Benchmark: `awscredd once --force` for a 3-link AssumeRole chain and for 50 independent
assume-role profiles against moto's STS on loopback, versus the same job done with boto3 the
way today's Python refresh scripts do it (bench/sts_boto3_refresh.py), in the same run.

Usage: sts_bench.py PATH_TO_AWSCREDD [RUNS]   (bench/sts.sh builds and calls it)
"""

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ACCOUNT = "123456789012"
HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except Exception:
            time.sleep(0.2)
    proc.kill()
    sys.exit("moto did not start within 30 s (pip install 'moto[server]')")


def config_text(kind, n, out):
    text = f'[daemon]\nstate_dir = "state"\n[[output]]\npath = "{out}"\n'
    for i in range(n):
        name = f"r{i:03d}"
        src = "longterm" if kind == "flat" or i == 0 else f"r{i - 1:03d}"
        text += (
            f'[profile.{name}]\nsource_profile = "{src}"\n'
            f'role_arn = "arn:aws:iam::{ACCOUNT}:role/{name}"\n'
        )
    return text


def timed(cmd, env, runs, check):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - start)
        if r.returncode != 0:
            sys.exit(f"{cmd[0]} failed ({r.returncode}):\n{r.stderr[-2000:]}")
        check()
    return statistics.median(times), min(times)


def main():
    awscredd = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    moto, url = start_moto()
    home = tempfile.mkdtemp(prefix="awscredd-sts-bench-")
    try:
        os.makedirs(os.path.join(home, ".aws"))
        with open(os.path.join(home, ".aws", "credentials"), "w") as f:
            f.write("[longterm]\naws_access_key_id = AKIAEXAMPLELONGTERM1\naws_secret_access_key = s3cr3t\n")
        env = dict(os.environ)
        env.update(
            HOME=home,
            AWS_ENDPOINT_URL_STS=url,
            AWS_CONFIG_FILE=os.path.join(home, "no-config"),
            AWS_EC2_METADATA_DISABLED="true",
            RUST_LOG="warn",
        )
        print(f"command: bash bench/sts.sh   (moto STS at {url}, {runs} runs each, wall time)")
        print()
        print(f"{'job':<44} {'awscredd':>10} {'boto3 script':>13} {'ratio':>7}")
        for kind, n, label in [("chain", 3, "3-link AssumeRole chain"), ("flat", 50, "50 independent AssumeRole profiles")]:
            out = os.path.join(home, f"{kind}.credentials")
            cfg = os.path.join(home, f"{kind}.toml")
            with open(cfg, "w") as f:
                f.write(config_text(kind, n, out))

            def check_out(path=out, n=n):
                text = open(path).read()
                missing = [i for i in range(n) if f"[r{i:03d}]" not in text]
                if missing:
                    sys.exit(f"{path}: profiles missing: {missing[:5]}")

            ours, ours_min = timed([awscredd, "--config", cfg, "once", "--force"], env, runs, check_out)
            script_out = os.path.join(home, f"{kind}.script.credentials")
            open(script_out, "w").close()
            theirs, theirs_min = timed(
                [sys.executable, os.path.join(HERE, "sts_boto3_refresh.py"), script_out, "longterm", url, kind, str(n), ACCOUNT],
                env,
                runs,
                lambda p=script_out, n=n: check_out(p, n),
            )
            print(f"{label:<44} {ours:>9.3f}s {theirs:>12.3f}s {theirs / ours:>6.1f}x")
            print(f"{'  (fastest run)':<44} {ours_min:>9.3f}s {theirs_min:>12.3f}s {theirs_min / ours_min:>6.1f}x")
    finally:
        moto.send_signal(signal.SIGTERM)
        try:
            moto.wait(timeout=10)
        except subprocess.TimeoutExpired:
            moto.kill()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
