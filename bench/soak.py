#!/usr/bin/env python3
"""Soak across formats and hooks (issue 27 item 9).

`awscredd run` keeps four files of one profile, an INI credentials file, an env file, a
credential_process JSON file and a .NET launchSettings.json, each with an `on_change` hook
(this script, `hook` mode) that parses its file and logs whether it was whole. The source is a
`credential_process` printing credentials that live 4 s (due again after 2 s), each set
numbered (`ASIA<n>`, `sk-<n>`, `tok-<n>`), so a file mixing two sets is caught. The daemon is
killed with SIGKILL at random moments and started again, round after round, while a reader
thread per file parses it continuously. It fails (exit 1, saying what) if:

- a read of a file finds it missing once it existed, not parseable, or mixing two sets;
- a hook saw such a file (or failed);
- a start after a kill does not write fresh credentials to all four files in time (a stale
  lock, or anything else, blocking it).

Usage: python3 bench/soak.py [--seconds 40] [--binary target/debug/awscredd] [--seed N]
Prints the rounds, the reads of each file, the hook runs and the distinct credential sets seen.
"""

import argparse
import configparser
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

FILES = {
    "ini": "credentials",
    "env": "aws.env",
    "json": "credentials.json",
    "launch-settings": "launchSettings.json",
}

# Each set lives 4 s: due again after half of that.
SOURCE = r"""#!/bin/sh
n=$(date +%s%N)
exp=$(date -u -d "@$(( $(date +%s) + 4 ))" +%Y-%m-%dT%H:%M:%SZ)
printf '{"Version": 1, "AccessKeyId": "ASIA%s", "SecretAccessKey": "sk-%s", "SessionToken": "tok-%s", "Expiration": "%s"}\n' "$n" "$n" "$n" "$exp"
"""


def parse(fmt, text):
    """The set number a file holds, or raises ValueError saying what is wrong."""
    if fmt == "ini":
        cp = configparser.ConfigParser(interpolation=None)
        cp.read_string(text)
        s = cp["soak"]
        values = (s["aws_access_key_id"], s["aws_secret_access_key"], s["aws_session_token"])
        expiry = s["aws_credential_expiration"]
    elif fmt == "env":
        env = {}
        for line in text.splitlines():
            if line.strip() and not line.startswith("#"):
                k, v = line.split("=", 1)
                env[k] = v
        values = (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"])
        expiry = env["AWS_CREDENTIAL_EXPIRATION"]
    elif fmt == "json":
        j = json.loads(text)
        if j.get("Version") != 1:
            raise ValueError("no Version 1")
        values = (j["AccessKeyId"], j["SecretAccessKey"], j["SessionToken"])
        expiry = j["Expiration"]
    else:
        j = json.loads(text)
        e = j["profiles"]["awscredd"]["environmentVariables"]
        values = (e["AWS_ACCESS_KEY_ID"], e["AWS_SECRET_ACCESS_KEY"], e["AWS_SESSION_TOKEN"])
        expiry = "-"
    akid, secret, token = values
    if not akid.startswith("ASIA"):
        raise ValueError(f"key id {akid!r}")
    n = akid[4:]
    if secret != f"sk-{n}" or token != f"tok-{n}":
        raise ValueError(f"a mix of two sets: {akid} {secret} {token}")
    if not expiry:
        raise ValueError("no expiry")
    return n


def read_whole(fmt, path):
    with open(path, encoding="utf-8") as f:
        return parse(fmt, f.read())


def hook(fmt, log):
    """`on_change` mode: parse AWSCREDD_OUTPUT and log one line about it."""
    path = os.environ.get("AWSCREDD_OUTPUT", "")
    try:
        line = f"ok {fmt} {read_whole(fmt, path)}\n"
        rc = 0
    except Exception as e:  # every failure is a finding, logged as such
        line = f"BAD {fmt} {type(e).__name__}: {e}\n".replace("\n", " ").rstrip() + "\n"
        rc = 1
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return rc


class Reader(threading.Thread):
    """Parses one file over and over until stopped."""

    def __init__(self, fmt, path, stop):
        super().__init__(daemon=True)
        self.fmt, self.path, self.stop = fmt, path, stop
        self.reads = 0
        self.seen = set()
        self.failures = []
        self.existed = False

    def run(self):
        while not self.stop.is_set():
            try:
                n = read_whole(self.fmt, self.path)
                self.existed = True
                self.seen.add(n)
            except FileNotFoundError:
                if self.existed:
                    self.failures.append("missing after it existed")
                time.sleep(0.01)
                continue
            except Exception as e:
                self.failures.append(f"{type(e).__name__}: {e}")
            self.reads += 1
            if len(self.failures) > 20:
                return


def config(d, script):
    hook = [sys.executable, os.path.abspath(__file__), "hook"]
    out = [f'[daemon]\nstate_dir = "{d}/state"\n']
    for fmt, name in FILES.items():
        out.append(
            f'[[output]]\npath = "{d}/{name}"\nformat = "{fmt}"\nprofiles = ["soak"]\n'
            f"on_change = {json.dumps(hook + [fmt, f'{d}/hooks.log'])}\n"
        )
    out.append(f'[profile.soak]\ncredential_process = "sh {script}"\n')
    return "\n".join(out)


def newest(readers):
    return {r.fmt: max(r.seen, default="0", key=int) for r in readers}


def wait_fresh(readers, since, limit, p):
    """Whether every file holds a set newer than `since` within `limit` seconds (while the
    daemon `p` runs)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and p.poll() is None:
        now = newest(readers)
        if all(int(now[f]) > int(since[f]) for f in FILES):
            return True
        time.sleep(0.05)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--binary", default="target/debug/awscredd")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"soak: {binary} is not built (cargo build)")
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    d = tempfile.mkdtemp(prefix="awscredd-soak-")
    script = os.path.join(d, "source.sh")
    with open(script, "w") as f:
        f.write(SOURCE)
    cfg = os.path.join(d, "awscredd.toml")
    with open(cfg, "w") as f:
        f.write(config(d, script))
    stop = threading.Event()
    readers = [Reader(fmt, os.path.join(d, name), stop) for fmt, name in FILES.items()]
    for r in readers:
        r.start()
    env = dict(os.environ, RUST_LOG="info")
    env.pop("AWS_SHARED_CREDENTIALS_FILE", None)
    problems = []
    rounds = 0
    kills_during_write = 0
    started = time.monotonic()
    log = open(os.path.join(d, "awscredd.log"), "ab")
    try:
        while time.monotonic() - started < a.seconds and not problems:
            rounds += 1
            before = newest(readers)
            p = subprocess.Popen([binary, "--config", cfg, "run"], stdout=log, stderr=log, env=env)
            try:
                # Every few rounds, and the first, the start must write all four files anew:
                # no lock left by a killed daemon may hold it back.
                if rounds % 5 == 1 and not wait_fresh(readers, before, 20, p):
                    problems.append(f"round {rounds}: no fresh credentials in every file 20 s after a start")
                time.sleep(rng.uniform(0.05, 3.0))
                if p.poll() is not None:
                    problems.append(f"round {rounds}: awscredd exited by itself ({p.returncode})")
                if newest(readers) != before:
                    kills_during_write += 1
            finally:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
            for r in readers:
                if r.failures:
                    problems.append(f"{r.fmt} reader: {r.failures[:3]}")
        # The last start after all the kills: fresh credentials everywhere.
        before = newest(readers)
        p = subprocess.Popen([binary, "--config", cfg, "run"], stdout=log, stderr=log, env=env)
        try:
            if not wait_fresh(readers, before, 20, p):
                problems.append("the last start wrote no fresh credentials to every file in 20 s")
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
                problems.append("awscredd did not stop within 10 s of SIGTERM")
        time.sleep(1.5)  # hooks still running finish and log
    finally:
        stop.set()
        for r in readers:
            r.join(timeout=5)
        log.close()
    hooks_log = os.path.join(d, "hooks.log")
    hook_lines = open(hooks_log).read().splitlines() if os.path.exists(hooks_log) else []
    bad_hooks = [line for line in hook_lines if not line.startswith("ok ")]
    hook_runs = {fmt: sum(1 for line in hook_lines if line.split()[1:2] == [fmt]) for fmt in FILES}
    for r in readers:
        if r.failures:
            problems.append(f"{r.fmt} reader: {r.failures[:3]}")
        if r.reads == 0:
            problems.append(f"{r.fmt}: never read whole")
    if bad_hooks:
        problems.append(f"hooks saw broken files: {bad_hooks[:3]}")
    for fmt, n in hook_runs.items():
        if n == 0:
            problems.append(f"no {fmt} hook ran")
    sets = len(set().union(*(r.seen for r in readers)))
    elapsed = time.monotonic() - started
    print(
        f"soak: seed {seed}, {elapsed:.0f} s, {rounds} rounds killed with SIGKILL "
        f"({kills_during_write} after a write in that round), {sets} credential sets"
    )
    print("soak: whole reads: " + ", ".join(f"{r.fmt} {r.reads}" for r in readers)
          + f" ({sum(r.reads for r in readers)} in all)")
    print("soak: hook runs that saw a whole file: "
          + ", ".join(f"{fmt} {n}" for fmt, n in hook_runs.items())
          + f" ({len(hook_lines) - len(bad_hooks)} in all, {len(bad_hooks)} broken)")
    if problems:
        for pr in dict.fromkeys(problems):
            print(f"soak: FAILED: {pr}", file=sys.stderr)
        print(f"soak: the files, logs and config are in {d}", file=sys.stderr)
        return 1
    if a.keep:
        print(f"soak: kept {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "hook":
        sys.exit(hook(sys.argv[2], sys.argv[3]))
    sys.exit(main())
