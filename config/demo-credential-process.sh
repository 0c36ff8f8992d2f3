#!/bin/sh
# An example credential_process: prints Version 1 JSON, as a company's SSO script would.
# The keys are made up; the expiry is one hour from now.
exp=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -v+1H +%Y-%m-%dT%H:%M:%SZ)
n=$(date +%s)
printf '{"Version": 1, "AccessKeyId": "ASIADEMO%012d", "SecretAccessKey": "demo-secret-%s", "SessionToken": "demo-token-%s", "Expiration": "%s"}\n' "$n" "$n" "$n" "$exp"
