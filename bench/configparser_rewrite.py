#!/usr/bin/env python3
"""Rewrite one profile of an AWS credentials file the way today's refresh scripts do.

Usage: configparser_rewrite.py PATH ITERATIONS [TOKEN_LEN]   (0: long-term keys, no token)

Each iteration is one refresh: read the whole file with configparser, set the three keys and
the expiry of one profile, write the whole file back. Two variants are timed, each starting
from the file as given (PATH is modified; pass a copy):

  plain:  open(PATH, "w") and config.write(f), as most scripts do;
  fsync:  config.write to a temp file in the same folder, os.fsync, os.replace over PATH,
          as careful scripts do.

Prints `python=VERSION`, `median_us=...` and `median_fsync_us=...` (microseconds per rewrite).
"""

import configparser
import datetime
import os
import random
import statistics
import string
import sys
import tempfile
import time

PROFILE = "profile-0500"
WARMUP = 5
BASE64 = string.ascii_letters + string.digits + "+/"
KEY_ID = string.ascii_uppercase + "234567"


def fresh_credentials(rng, n, token_len):
    """New credentials per iteration, made before timing (as the Rust side does); with
    token_len 0, long-term keys (no session token, no expiry)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    out = []
    for i in range(n):
        expiry = now + datetime.timedelta(hours=1, seconds=i)
        creds = {
            "aws_access_key_id": "ASIA" + "".join(rng.choices(KEY_ID, k=16)),
            "aws_secret_access_key": "".join(rng.choices(BASE64, k=40)),
        }
        if token_len > 0:
            creds["aws_session_token"] = "IQoJb3JpZ2luX2Vj" + "".join(
                rng.choices(BASE64, k=token_len - 16)
            )
            creds["aws_credential_expiration"] = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(creds)
    return out


def load_and_set(path, creds):
    # RawConfigParser: no `%` interpolation, as credentials values may contain `%`.
    config = configparser.RawConfigParser()
    config.read(path)
    if not config.has_section(PROFILE):
        config.add_section(PROFILE)
    for key, value in creds.items():
        config.set(PROFILE, key, value)
    return config


def rewrite_plain(path, creds):
    config = load_and_set(path, creds)
    with open(path, "w") as f:
        config.write(f)


def rewrite_fsync(path, creds):
    config = load_and_set(path, creds)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".credentials-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            config.write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def median_us(path, original, rewrite, all_creds):
    with open(path, "wb") as f:
        f.write(original)
    for creds in all_creds[:WARMUP]:
        rewrite(path, creds)
    samples = []
    for creds in all_creds:
        start = time.perf_counter()
        rewrite(path, creds)
        samples.append(time.perf_counter() - start)
    # Sanity check: the last credentials are in the file.
    check = configparser.RawConfigParser()
    check.read(path)
    assert check.get(PROFILE, "aws_access_key_id") == all_creds[-1]["aws_access_key_id"]
    return statistics.median(samples) * 1e6


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    path, iterations = sys.argv[1], int(sys.argv[2])
    token_len = int(sys.argv[3]) if len(sys.argv) == 4 else 700
    with open(path, "rb") as f:
        original = f.read()
    all_creds = fresh_credentials(random.Random(1), iterations, token_len)
    print(f"python={sys.version.split()[0]}")
    print(f"median_us={median_us(path, original, rewrite_plain, all_creds):.1f}")
    print(f"median_fsync_us={median_us(path, original, rewrite_fsync, all_creds):.1f}")


if __name__ == "__main__":
    main()
