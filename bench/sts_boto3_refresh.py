#!/usr/bin/env python3
"""Refresh assumed-role profiles the way today's Python refresh scripts do (the comparison for
bench/sts.sh): boto3 sessions, one AssumeRole per profile in order (a chained profile from the
credentials of the one before), and configparser to write the credentials file.

Usage: sts_boto3_refresh.py CREDENTIALS_FILE SOURCE_PROFILE ENDPOINT chain|flat N ACCOUNT
"""

import configparser
import sys

import boto3


def main():
    path, source, endpoint, kind, n, account = sys.argv[1:7]
    n = int(n)
    session = boto3.Session(profile_name=source, region_name="us-east-1")
    sts = session.client("sts", endpoint_url=endpoint)
    config = configparser.RawConfigParser()
    config.read(path)
    creds = None
    for i in range(n):
        name = f"r{i:03d}"
        if kind == "chain" and creds is not None:
            sts = boto3.client(
                "sts",
                region_name="us-east-1",
                endpoint_url=endpoint,
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
        out = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{name}",
            RoleSessionName=f"script-{name}",
        )
        creds = out["Credentials"]
        if not config.has_section(name):
            config.add_section(name)
        config.set(name, "aws_access_key_id", creds["AccessKeyId"])
        config.set(name, "aws_secret_access_key", creds["SecretAccessKey"])
        config.set(name, "aws_session_token", creds["SessionToken"])
        config.set(name, "aws_credential_expiration", creds["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ"))
    with open(path, "w") as f:
        config.write(f)


if __name__ == "__main__":
    main()
