#!/usr/bin/env python3
"""awscredd at scale (issue 28): what N profiles cost. Run by bench/scale.sh, which builds the
binaries; see bench/README.md.

Three parts, each a table:

1. loading: whole-process wall time of `check`, `status`, `once` with nothing due and
   `credential-process --profile <the last profile>` for N `credential_process` profiles whose
   credentials file already holds fresh credentials (one hour left), beside botocore resolving
   that profile from the same credentials file (a python process, as an SDK starting up);
2. SSO: one `once --force` pass of N SSO profiles against the fake IAM Identity Center
   answering after 20 ms, then `run` at rest with those N profiles (RSS, RssAnon);
3. steady state: `run` over N SSO profiles whose credentials live 60-120 s (per role) for
   SCALE_STEADY_SECS: refreshes (the fake's GetRoleCredentials count), whole-file rewrites (each
   new (inode, mtime) of the output seen by a 5 ms poll), bytes written (/proc/PID/io), CPU,
   RSS, RssAnon, with the per-hour figures.

Every command is capped by SCALE_TIMEOUT seconds (a run that hits it prints `>T`); every
process started is stopped by its PID; files go to a temporary folder removed at the end.
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ["AWSCREDD_BIN"]
FAKE = os.environ["FAKE_AWS_BIN"]
PYTHON = os.environ.get("SCALE_PYTHON", sys.executable)
TIMEOUT = float(os.environ.get("SCALE_TIMEOUT", "120"))
LOAD_SIZES = [int(n) for n in os.environ.get("SCALE_SIZES", "100 1000 10000 100000").split()]
CP_SMALL = int(os.environ.get("SCALE_CP_SMALL", "50"))
SSO_SIZES = [int(n) for n in os.environ.get("SCALE_SSO_SIZES", "50 1000 10000").split()]
STEADY_SIZES = [int(n) for n in os.environ.get("SCALE_STEADY_SIZES", "200 1000").split()]
STEADY_SECS = float(os.environ.get("SCALE_STEADY_SECS", "180"))
PARTS = os.environ.get("SCALE_PARTS", "load sso steady").split()
LATENCY_MS = os.environ.get("SCALE_LATENCY_MS", "20")

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AWSCREDD_"))}
ENV.pop("RUST_LOG", None)

TOKEN = "IQoJb3JpZ2luX2VjE" + "x" * 683  # a session token of a real one's length (700)


def utc(seconds_from_now):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds_from_now))


def name(i):
    return f"p{i:06d}"


def write_load_files(d, n):
    """N credential_process profiles; their credentials file holds fresh credentials."""
    exp = utc(3600)
    with open(os.path.join(d, "config.toml"), "w") as f:
        f.write(f'[daemon]\nstate_dir = "{d}/state"\n[[output]]\npath = "{d}/credentials"\n')
        for i in range(n):
            f.write(f'\n[profile.{name(i)}]\ncredential_process = "false"\n')
    with open(os.path.join(d, "credentials"), "w") as f:
        for i in range(n):
            f.write(
                f"[{name(i)}]\naws_access_key_id = ASIABENCH{i:011d}\n"
                f"aws_secret_access_key = secret{i:034d}\naws_session_token = {TOKEN}\n"
                f"aws_credential_expiration = {exp}\n\n"
            )
    os.chmod(os.path.join(d, "credentials"), 0o600)


def write_sso_config(d, n, tag):
    path = os.path.join(d, f"config-{tag}.toml")
    with open(path, "w") as f:
        f.write(f'[daemon]\nstate_dir = "{d}/state-{tag}"\n[[output]]\npath = "{d}/out-{tag}"\n')
        f.write('[sso_session.corp]\nsso_start_url = "https://bench.awsapps.com/start"\n'
                'sso_region = "us-east-1"\n')
        for i in range(n):
            f.write(f'\n[profile.{name(i)}]\nsso_session = "corp"\n'
                    f'sso_account_id = "{111122220000 + i % 500:012d}"\n'
                    f'sso_role_name = "Role{i}"\n')
    return path


def timed(argv, env=None, ok=(0,)):
    """Wall seconds of one run, or None past the timeout. Fails the bench on a bad exit."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None
    dt = time.monotonic() - t0
    if p.returncode not in ok:
        sys.exit(f"bench/scale.py: {' '.join(argv)} exited {p.returncode}: "
                 f"{p.stderr.decode(errors='replace')[-2000:]}")
    return dt, p.stdout


def median_time(argv, env=None, ok=(0,), check=None):
    """Median of up to 5 runs, stopping once 3 s were spent; None if one timed out."""
    times, spent = [], 0.0
    while len(times) < 5 and (spent < 3 or len(times) < 1):
        r = timed(argv, env, ok)
        if r is None:
            return None
        if check:
            check(r[1])
        times.append(r[0])
        spent += r[0]
    return statistics.median(times)


def fmt(t):
    if t is None:
        return f">{TIMEOUT:g}s"
    return f"{t * 1000:.1f} ms" if t < 1 else f"{t:.2f} s"


def load_part(tmp):
    print("\n## Loading: whole process, N credential_process profiles, fresh credentials file")
    print(f"{'profiles':>9} {'check':>11} {'status':>11} {'once':>11} {'cred-proc':>11} {'botocore':>11}")
    sizes = sorted(set(LOAD_SIZES + [CP_SMALL]))
    for n in sizes:
        d = os.path.join(tmp, f"load-{n}")
        os.makedirs(d)
        write_load_files(d, n)
        cfg = os.path.join(d, "config.toml")
        last = name(n - 1)
        base = [BIN, "--config", cfg]

        def printed(out):
            if b'"AccessKeyId":"ASIABENCH' not in out.replace(b" ", b""):
                sys.exit(f"bench/scale.py: credential-process printed {out[:200]!r}")

        cp = median_time(base + ["credential-process", "--profile", last], check=printed)
        if n == CP_SMALL and n not in LOAD_SIZES:
            print(f"{n:>9} {'':>11} {'':>11} {'':>11} {fmt(cp):>11}")
            continue
        check = median_time(base + ["check"])
        status = median_time(base + ["status"], ok=(0, 1))
        once = median_time(base + ["--log-level", "error", "once"])
        boto = botocore_time(d, last)
        print(f"{n:>9} {fmt(check):>11} {fmt(status):>11} {fmt(once):>11} {fmt(cp):>11} "
              f"{fmt(boto):>11}", flush=True)
        shutil.rmtree(d)


BOTO = """
import sys
import botocore.session
s = botocore.session.Session(profile=sys.argv[1])
c = s.get_credentials().get_frozen_credentials()
assert c.access_key.startswith("ASIABENCH"), c.access_key
"""


def botocore_time(d, profile):
    env = dict(ENV, AWS_SHARED_CREDENTIALS_FILE=os.path.join(d, "credentials"),
               AWS_CONFIG_FILE=os.path.join(d, "no-config"))
    try:
        subprocess.run([PYTHON, "-c", "import botocore"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return median_time([PYTHON, "-c", BOTO, profile], env=env)


class Fake:
    """The fake IAM Identity Center (examples/fake_aws.rs) with a signed-in session."""

    def __init__(self, home, ttl=None):
        env = dict(ENV, FAKE_AWS_LATENCY_MS=LATENCY_MS)
        if ttl:
            env["FAKE_AWS_ROLE_TTL"] = ttl
        self.p = subprocess.Popen(
            [FAKE, home, "corp", "https://bench.awsapps.com/start", "us-east-1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            text=True)
        line = self.p.stdout.readline()
        if not line.startswith("url="):
            self.stop()
            sys.exit(f"bench/scale.py: the fake said {line!r}")
        self.url = line.split()[0][4:]

    def calls(self):
        self.p.stdin.write("calls\n")
        self.p.stdin.flush()
        return int(self.p.stdout.readline().strip().split("=")[1])

    def stop(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon"):
                out[k] = int(v.split()[0])
    return out


def proc_io(pid):
    with open(f"/proc/{pid}/io") as f:
        return {k: int(v) for k, v in (line.split(": ") for line in f)}


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_profiles(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\naws_session_token")
    except OSError:
        return 0


class Daemon:
    def __init__(self, cfg, env):
        self.p = subprocess.Popen([BIN, "--config", cfg, "--log-level", "warn", "run"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.err = []
        threading.Thread(target=lambda: self.err.extend(self.p.stderr), daemon=True).start()

    def wait_full(self, out, n, limit):
        deadline = time.monotonic() + limit
        while count_profiles(out) < n:
            if time.monotonic() > deadline or self.p.poll() is not None:
                self.stop()
                sys.exit(f"bench/scale.py: the daemon did not write {n} profiles in {limit:g} s: "
                         f"{b''.join(self.err[-20:]).decode(errors='replace')}")
            time.sleep(0.05)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def sso_part(tmp):
    print(f"\n## SSO: one `once --force` pass (portal answering after {LATENCY_MS} ms), then "
          "`run` at rest")
    print(f"{'profiles':>9} {'pass':>10} {'RSS':>10} {'RssAnon':>10}")
    home = os.path.join(tmp, "home-sso")
    fake = Fake(home)
    env = dict(ENV, HOME=home, AWS_ENDPOINT_URL_SSO=fake.url, AWS_ENDPOINT_URL_SSO_OIDC=fake.url)
    try:
        for n in SSO_SIZES:
            cfg = write_sso_config(tmp, n, f"sso{n}")
            out = os.path.join(tmp, f"out-sso{n}")
            t = median_time([BIN, "--config", cfg, "--log-level", "error", "once", "--force"],
                            env=env)
            if t is not None and count_profiles(out) != n:
                sys.exit(f"bench/scale.py: the pass wrote {count_profiles(out)} of {n} profiles")
            d = Daemon(cfg, env)
            try:
                d.wait_full(out, n, TIMEOUT)
                time.sleep(3)  # at rest: the pass over, every credential an hour away
                mem = proc_status(d.p.pid)
            finally:
                d.stop()
            print(f"{n:>9} {fmt(t):>10} {mem['VmRSS'] / 1024:>6.1f} MiB "
                  f"{mem['RssAnon'] / 1024:>6.1f} MiB", flush=True)
    finally:
        fake.stop()


def steady_part(tmp):
    print(f"\n## Steady state: `run`, SSO credentials living 60-120 s per role, "
          f"{STEADY_SECS:g} s measured after the first pass")
    print(f"{'profiles':>9} {'refreshes':>10} {'rewrites':>9} {'rw/refresh':>10} "
          f"{'MB written':>10} {'wchar MB':>9} {'CPU s':>6} {'ms/refresh':>10} {'RSS':>9} "
          f"{'RssAnon':>9} {'rewrites/h':>10} {'MB/h':>7}")
    for n in STEADY_SIZES:
        home = os.path.join(tmp, f"home-steady{n}")
        fake = Fake(home, ttl="60-120")
        env = dict(ENV, HOME=home, AWS_ENDPOINT_URL_SSO=fake.url,
                   AWS_ENDPOINT_URL_SSO_OIDC=fake.url)
        cfg = write_sso_config(tmp, n, f"steady{n}")
        out = os.path.join(tmp, f"out-steady{n}")
        d = Daemon(cfg, env)
        try:
            d.wait_full(out, n, TIMEOUT)
            rewrites = [0]
            stop = threading.Event()

            def watch():
                seen = None
                while not stop.is_set():
                    try:
                        st = os.stat(out)
                        now = (st.st_ino, st.st_mtime_ns, st.st_size)
                    except OSError:
                        now = None
                    if seen is not None and now is not None and now != seen:
                        rewrites[0] += 1
                    if now is not None:
                        seen = now
                    time.sleep(0.005)

            calls0, io0, cpu0 = fake.calls(), proc_io(d.p.pid), proc_cpu(d.p.pid)
            w = threading.Thread(target=watch, daemon=True)
            w.start()
            time.sleep(STEADY_SECS)
            stop.set()
            w.join()
            calls1, io1, cpu1 = fake.calls(), proc_io(d.p.pid), proc_cpu(d.p.pid)
            mem = proc_status(d.p.pid)
        finally:
            d.stop()
            fake.stop()
        refreshes = calls1 - calls0
        wb = (io1["write_bytes"] - io0["write_bytes"]) / 1e6
        wc = (io1["wchar"] - io0["wchar"]) / 1e6
        cpu = cpu1 - cpu0
        per_h = 3600 / STEADY_SECS
        print(f"{n:>9} {refreshes:>10} {rewrites[0]:>9} {rewrites[0] / max(refreshes, 1):>10.4f} "
              f"{wb:>10.1f} {wc:>9.1f} {cpu:>6.2f} {cpu * 1000 / max(refreshes, 1):>10.2f} "
              f"{mem['VmRSS'] / 1024:>5.1f}MiB {mem['RssAnon'] / 1024:>5.1f}MiB "
              f"{rewrites[0] * per_h:>10.0f} {wc * per_h:>7.0f}", flush=True)


def main():
    tmp = tempfile.mkdtemp(prefix="awscredd-scale.")
    try:
        print(f"awscredd: {BIN}; each command capped at {TIMEOUT:g} s")
        if "load" in PARTS:
            load_part(tmp)
        if "sso" in PARTS:
            sso_part(tmp)
        if "steady" in PARTS:
            steady_part(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
