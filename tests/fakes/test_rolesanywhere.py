"""Proof that the fake Roles Anywhere `CreateSession` (rolesanywhere.py) accepts what AWS's
reference signer for Python (`iam-rolesanywhere-session`, PyPI) sends, for RSA 2048, EC P-256
and EC P-384 keys, with and without an intermediate, and refuses what the service refuses: a
key that does not match the certificate, a certificate from another CA, an expired
certificate, a tampered body. An independent signer written here (the way
aws/rolesanywhere-credential-helper signs: ARNs in the query string) covers the rest; the
scripted misbehaviour and the command-line runner are checked too.
"""

import base64
import datetime
import hashlib
import http.client
import json
import os
import signal
import ssl
import time
import urllib.parse

import pytest
from botocore.awsrequest import AWSRequest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from iam_rolesanywhere_session import (
    CredentialsRetrievalError,
    IAMRolesAnywhereSession,
    IAMRolesAnywhereSigner,
)

import fakebase
import pki
from rolesanywhere import FakeRolesAnywhere

HERE = os.path.dirname(os.path.abspath(__file__))
TA = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/11111111-2222-3333-4444-555555555555"
PROFILE = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/66666666-7777-8888-9999-000000000000"
ROLE = "arn:aws:iam::111122223333:role/Server"


@pytest.fixture(scope="module")
def pkis(tmp_path_factory):
    """Per key kind, a hierarchy with an intermediate and one without; plus a stranger CA."""
    out = {}
    for kind in pki.KEY_KINDS:
        for chained in (True, False):
            h = pki.Hierarchy(kind, intermediate=chained, name=f"{kind}-{'chain' if chained else 'direct'}")
            folder = tmp_path_factory.mktemp(f"{kind}-{chained}")
            out[(kind, chained)] = (h, h.write(str(folder)))
    stranger = pki.Hierarchy("p256", intermediate=False, name="stranger")
    out["stranger"] = (stranger, stranger.write(str(tmp_path_factory.mktemp("stranger"))))
    return out


@pytest.fixture(scope="module")
def fake(pkis, tmp_path_factory):
    roots = [pki.cert_pem(h.root) for key, (h, _) in pkis.items() if key != "stranger"]
    f = FakeRolesAnywhere(roots, str(tmp_path_factory.mktemp("tls")), trust_anchor_arn=TA,
                          profile_arn=PROFILE, role_arn=ROLE)
    f.start()
    yield f
    f.stop()


@pytest.fixture(autouse=True)
def clean(fake):
    fake.faults.reset()
    fake.calls.reset()


def reference_session(fake, paths, cert=None, key=None, chain=None, **kwargs):
    return IAMRolesAnywhereSession(
        profile_arn=PROFILE, role_arn=ROLE, trust_anchor_arn=TA,
        certificate=cert or paths["leaf"], private_key=key or paths["key"],
        certificate_chain=chain if chain is not None else paths.get("chain"),
        region="us-east-1", endpoint=f"127.0.0.1:{fake.port}", verify=fake.ca_bundle,
        **kwargs)


def reference_credentials(session):
    return session.get_refreshable_credentials().get_frozen_credentials()


# ---- the reference signer against the fake -------------------------------------------------

@pytest.mark.parametrize("chained", [True, False], ids=["with-intermediate", "leaf-from-root"])
@pytest.mark.parametrize("kind", pki.KEY_KINDS)
def test_reference_signer_gets_credentials(fake, pkis, kind, chained):
    h, paths = pkis[(kind, chained)]
    creds = reference_credentials(reference_session(fake, paths, session_duration=1800))
    assert creds.access_key.startswith("ASIA") and creds.secret_key and creds.token
    [call] = fake.calls.snapshot()
    assert call["status"] == 201, call
    assert call["access_key_id"] == creds.access_key
    assert call["serial"] == str(h.leaf.serial_number)
    assert call["algorithm"] == ("AWS4-X509-RSA-SHA256" if kind == "rsa2048" else "AWS4-X509-ECDSA-SHA256")
    assert call["chain_length"] == (1 if chained else 0)
    assert call["signature"] == "verified" and call["path"] == "verified"
    assert call["durationSeconds"] == 1800 and call["granted_seconds"] == 1800


def test_reference_signer_keys_in_pkcs1_and_sec1(fake, pkis, tmp_path):
    for kind in ("rsa2048", "p384"):
        h, paths = pkis[(kind, True)]
        key = pki.write_private(str(tmp_path / f"{kind}.key"), pki.key_pem(h.leaf_key, "traditional"))
        assert b"PRIVATE KEY-----" in open(key, "rb").read()
        reference_credentials(reference_session(fake, paths, key=key))
    assert [c["status"] for c in fake.calls.snapshot()] == [201, 201]


def test_response_is_the_service_json(fake, pkis):
    h, paths = pkis[("p256", True)]
    status, headers, body = independent_call(fake, h, role_session_name="web-01")
    assert status == 201, body
    answer = json.loads(body)
    assert set(answer) == {"credentialSet", "subjectArn"}
    [item] = answer["credentialSet"]
    assert set(item) == {"assumedRoleUser", "credentials", "packedPolicySize", "roleArn", "sourceIdentity"}
    assert set(item["credentials"]) == {"accessKeyId", "secretAccessKey", "sessionToken", "expiration"}
    assert item["assumedRoleUser"]["arn"] == "arn:aws:sts::111122223333:assumed-role/Server/web-01"
    assert item["roleArn"] == ROLE
    expires = datetime.datetime.strptime(item["credentials"]["expiration"], "%Y-%m-%dT%H:%M:%SZ")
    left = expires.replace(tzinfo=datetime.timezone.utc) - datetime.datetime.now(datetime.timezone.utc)
    assert 3500 < left.total_seconds() <= 3600
    assert answer["subjectArn"].startswith("arn:aws:rolesanywhere:us-east-1:111122223333:subject/")


# ---- refusals through the reference signer -------------------------------------------------

def refused_status(fn):
    with pytest.raises(CredentialsRetrievalError) as e:
        fn()
    return e.value.status_code, e.value.message


def test_key_that_does_not_match_the_certificate_is_refused(fake, pkis):
    _, paths = pkis[("p256", True)]
    _, other = pkis[("p256", False)]
    status, message = refused_status(lambda: reference_credentials(
        reference_session(fake, paths, key=other["key"])))
    assert status == 403 and "signature" in message
    [call] = fake.calls.snapshot()
    assert call["error_type"] == "AccessDeniedException"


def test_certificate_from_another_ca_is_refused(fake, pkis):
    _, paths = pkis["stranger"]
    status, message = refused_status(lambda: reference_credentials(reference_session(fake, paths)))
    assert status == 403 and "trust anchor" in message


def test_expired_certificate_is_refused(fake, pkis, tmp_path):
    h, _ = pkis[("rsa2048", True)]
    now = datetime.datetime.now(datetime.timezone.utc)
    cert, key = h.new_leaf(not_before=now - datetime.timedelta(days=3),
                           not_after=now - datetime.timedelta(minutes=1))
    leaf = pki.write_public(str(tmp_path / "old.pem"), pki.cert_pem(cert))
    keyf = pki.write_private(str(tmp_path / "old.key"), pki.key_pem(key))
    chain = pki.write_public(str(tmp_path / "chain.pem"), pki.cert_pem(*h.intermediates))
    status, message = refused_status(lambda: reference_credentials(
        reference_session(fake, {}, cert=leaf, key=keyf, chain=chain)))
    assert status == 403 and "expired" in message


def test_leaf_from_an_intermediate_without_the_chain_is_refused(fake, pkis):
    _, paths = pkis[("p384", True)]
    status, message = refused_status(lambda: reference_credentials(
        reference_session(fake, paths, chain=False)))
    assert status == 403 and "trust anchor" in message


def test_renewed_certificate_new_serial_is_accepted(fake, pkis, tmp_path):
    h, paths = pkis[("p256", True)]
    cert, key = h.new_leaf()
    leaf = pki.write_public(str(tmp_path / "new.pem"), pki.cert_pem(cert))
    keyf = pki.write_private(str(tmp_path / "new.key"), pki.key_pem(key))
    reference_credentials(reference_session(fake, paths, cert=leaf, key=keyf))
    assert fake.calls.snapshot()[0]["serial"] == str(cert.serial_number)


def test_tampered_body_is_refused(fake, pkis):
    h, paths = pkis[("rsa2048", False)]
    signer = IAMRolesAnywhereSigner(certificate=paths["leaf"], private_key=paths["key"], region="us-east-1")
    body = {"durationSeconds": 900, "profileArn": PROFILE, "roleArn": ROLE, "trustAnchorArn": TA}
    request = AWSRequest(method="POST", url=f"{fake.url}/sessions", data=json.dumps(body))
    signer.add_auth(request)
    headers = dict(request.headers.items())
    # First the untouched request, to show the tampering is what gets refused.
    assert send(fake, headers, json.dumps(body).encode())[0] == 201
    tampered = json.dumps(dict(body, durationSeconds=43200)).encode()
    status, _, answer = send(fake, headers, tampered)
    assert status == 403 and "signature" in json.loads(answer)["message"]


# ---- an independent signer (the Go helper's way: ARNs in the query string) ----------------

def b64der(cert):
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def independent_call(fake, h, *, key=None, leaf=None, chain=None, duration=3600, role=ROLE,
                     profile=PROFILE, ta=TA, when=None, region="us-east-1", serial=None,
                     algorithm=None, sign_hash=None, role_session_name=None, body_override=None,
                     in_query=True):
    key = key or h.leaf_key
    leaf = leaf or h.leaf
    chain = h.intermediates if chain is None else chain
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    arns = {"profileArn": profile, "roleArn": role, "trustAnchorArn": ta}
    body = {"durationSeconds": duration}
    if role_session_name:
        body["roleSessionName"] = role_session_name
    if not in_query:
        body.update(arns)
    body_bytes = body_override if body_override is not None else json.dumps(body).encode()
    query = urllib.parse.urlencode(sorted(arns.items()), quote_via=urllib.parse.quote, safe="") if in_query else ""
    headers = {
        "Host": f"127.0.0.1:{fake.port}",
        "Content-Type": "application/json",
        "X-Amz-Date": amz_date,
        "X-Amz-X509": b64der(leaf),
    }
    if chain:
        headers["X-Amz-X509-Chain"] = ",".join(b64der(c) for c in chain)
    names = sorted(headers, key=str.lower)
    canonical = "\n".join([
        "POST", "/sessions", query,
        "".join(f"{n.lower()}:{headers[n].strip()}\n" for n in names),
        ";".join(n.lower() for n in names),
        hashlib.sha256(body_bytes).hexdigest(),
    ])
    if algorithm is None:
        algorithm = "AWS4-X509-RSA-SHA256" if isinstance(key, rsa.RSAPrivateKey) else "AWS4-X509-ECDSA-SHA256"
    scope = f"{amz_date[:8]}/{region}/rolesanywhere/aws4_request"
    to_sign = f"{algorithm}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}".encode()
    digest = sign_hash or hashes.SHA256()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, padding.PKCS1v15(), digest)
    else:
        signature = key.sign(to_sign, ec.ECDSA(digest))
    serial = str(leaf.serial_number) if serial is None else serial
    headers["Authorization"] = (f"{algorithm} Credential={serial}/{scope}, "
                                f"SignedHeaders={';'.join(n.lower() for n in names)}, Signature={signature.hex()}")
    return send(fake, headers, body_bytes, path="/sessions" + (f"?{query}" if query else ""))


def send(fake, headers, body, path="/sessions", method="POST"):
    context = ssl.create_default_context(cafile=fake.ca_bundle)
    conn = http.client.HTTPSConnection("127.0.0.1", fake.port, context=context, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            if name.lower() != "content-length":
                conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("kind", pki.KEY_KINDS)
def test_independent_signer_with_arns_in_the_query(fake, pkis, kind):
    h, _ = pkis[(kind, True)]
    status, _, body = independent_call(fake, h)
    assert status == 201, body
    assert fake.calls.snapshot()[0]["trustAnchorArn"] == TA


def test_arns_in_the_body_only(fake, pkis):
    h, _ = pkis[("p256", False)]
    status, _, body = independent_call(fake, h, in_query=False)
    assert status == 201, body


def test_p384_signed_over_sha384_is_refused(fake, pkis):
    """The service's algorithms hash with SHA-256 for every curve: a P-384 signature made over
    SHA-384 does not verify."""
    h, _ = pkis[("p384", True)]
    status, _, body = independent_call(fake, h, sign_hash=hashes.SHA384())
    assert status == 403 and b"signature" in body


@pytest.mark.parametrize("case, expect", [
    ("stale-date", 403), ("future-date", 403), ("serial-in-hex", 403), ("wrong-region", 403),
    ("rsa-algorithm-for-ec-key", 403), ("unknown-algorithm", 403), ("duration-899", 400),
    ("duration-43201", 400), ("role-not-in-profile", 403), ("other-profile", 403),
    ("other-trust-anchor", 403), ("body-not-json", 400), ("bad-role-session-name", 400),
])
def test_independent_refusals(fake, pkis, case, expect):
    h, _ = pkis[("p256", True)]
    now = datetime.datetime.now(datetime.timezone.utc)
    kwargs = {
        "stale-date": {"when": now - datetime.timedelta(minutes=6)},
        "future-date": {"when": now + datetime.timedelta(minutes=6)},
        "serial-in-hex": {"serial": format(h.leaf.serial_number, "x")},
        "wrong-region": {"region": "eu-west-1"},
        "rsa-algorithm-for-ec-key": {"algorithm": "AWS4-X509-RSA-SHA256"},
        "unknown-algorithm": {"algorithm": "AWS4-X509-ECDSA-SHA384"},
        "duration-899": {"duration": 899},
        "duration-43201": {"duration": 43201},
        "role-not-in-profile": {"role": "arn:aws:iam::111122223333:role/Other"},
        "other-profile": {"profile": PROFILE.replace("6666", "1234")},
        "other-trust-anchor": {"ta": TA.replace("1111-", "9999-")},
        "body-not-json": {"body_override": b"durationSeconds=900"},
        "bad-role-session-name": {"role_session_name": "has space"},
    }[case]
    status, headers, body = independent_call(fake, h, **kwargs)
    assert status == expect, body
    answer = json.loads(body)
    assert answer["message"]
    assert headers["x-amzn-ErrorType"] == ("ValidationException" if expect == 400 else "AccessDeniedException")


def test_profile_duration_caps_the_session(fake, pkis):
    h, _ = pkis[("p256", True)]
    status, _, body = independent_call(fake, h, duration=43200)
    assert status == 201
    assert fake.calls.snapshot()[0]["granted_seconds"] == 3600


# ---- scripted misbehaviour and the record of calls ------------------------------------------

def test_throttling_then_success(fake, pkis):
    _, paths = pkis[("p256", True)]
    fake.faults.script({"next": [{"status": 429, "count": 2}]})
    session = reference_session(fake, paths)
    for _ in range(2):
        status, message = refused_status(lambda: reference_credentials(session))
        assert status == 429 and message
    reference_credentials(reference_session(fake, paths))
    assert [c["status"] for c in fake.calls.snapshot()] == [429, 429, 201]


@pytest.mark.parametrize("status, code", [(403, "AccessDeniedException"), (429, "ThrottlingException"),
                                          (500, "InternalServerException")])
def test_scripted_error_bodies(fake, pkis, status, code):
    h, _ = pkis[("rsa2048", False)]
    fake.faults.script({"next": [{"status": status}]})
    got, headers, body = independent_call(fake, h)
    assert got == status and headers["x-amzn-ErrorType"] == code
    assert json.loads(body)["message"]


def test_delay_huge_and_truncated_bodies(fake, pkis):
    h, _ = pkis[("p256", False)]
    fake.faults.script({"next": [{"delay_ms": 400}, {"body": "huge"}, {"body": "truncated"}]})
    started = time.monotonic()
    assert independent_call(fake, h)[0] == 201
    assert time.monotonic() - started >= 0.4
    status, _, body = independent_call(fake, h)
    assert status == 201 and len(body) >= 2 * 1024 * 1024
    with pytest.raises(http.client.IncompleteRead):
        independent_call(fake, h)
    assert independent_call(fake, h)[0] == 201
    calls = fake.calls.snapshot()
    assert [c.get("body") for c in calls] == [None, "huge", "truncated", None]


def test_control_endpoints(fake, pkis):
    h, _ = pkis[("p256", False)]
    ok = json.dumps({"delay_ms": 0, "next": [{"status": 500}]}).encode()
    assert send(fake, {"Host": "127.0.0.1", "Content-Type": "application/json"}, ok, path="/_fake/faults")[0] == 200
    assert independent_call(fake, h)[0] == 500
    assert independent_call(fake, h)[0] == 201
    status, _, body = send(fake, {"Host": "127.0.0.1"}, b"", path="/_fake/calls", method="GET")
    calls = json.loads(body)
    assert status == 200 and calls["count"] == 2
    assert calls["calls"][1]["serial"] == str(h.leaf.serial_number)


# ---- the command-line runner ----------------------------------------------------------------

def test_command_line(pkis, tmp_path):
    h, paths = pkis[("rsa2048", True)]
    record = tmp_path / "calls.jsonl"
    proc, info = fakebase.launch(
        [os.path.join(HERE, "rolesanywhere.py"), "--port", "0",
         "--ca-dir", str(tmp_path / "tls"), "--trust-anchor", paths["root"],
         "--trust-anchor-arn", TA, "--profile-arn", PROFILE, "--role-arn", ROLE,
         "--record", str(record), "--fail", "429:1", "--exit-after", "60"])
    try:
        assert info["url"].startswith("https://127.0.0.1:")
        port = int(info["url"].rsplit(":", 1)[1])
        session = IAMRolesAnywhereSession(
            profile_arn=PROFILE, role_arn=ROLE, trust_anchor_arn=TA, certificate=paths["leaf"],
            private_key=paths["key"], certificate_chain=paths["chain"], region=info["region"],
            endpoint=f"127.0.0.1:{port}", verify=info["ca_bundle"])
        assert refused_status(lambda: reference_credentials(session))[0] == 429
        creds = reference_credentials(IAMRolesAnywhereSession(
            profile_arn=PROFILE, role_arn=ROLE, trust_anchor_arn=TA, certificate=paths["leaf"],
            private_key=paths["key"], certificate_chain=paths["chain"], region=info["region"],
            endpoint=f"127.0.0.1:{port}", verify=info["ca_bundle"]))
        entries = [json.loads(line) for line in record.read_text().splitlines()]
        assert [e["status"] for e in entries] == [429, 201]
        assert entries[1]["access_key_id"] == creds.access_key
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_clients_trust_the_fake_through_ssl_cert_file(fake):
    """The CA file is all a client needs: a separate Python trusting it only through
    SSL_CERT_FILE, with strict X.509 checks (as rustls/webpki are strict), reaches the fake."""
    code = ("import ssl, urllib.request\n"
            "ctx = ssl.create_default_context()\n"
            "ctx.verify_flags |= ssl.VERIFY_X509_STRICT\n"
            f"print(urllib.request.urlopen('https://127.0.0.1:{fake.port}/_fake/calls', context=ctx, timeout=10).status)\n")
    env = {"PATH": os.environ.get("PATH", ""), "SSL_CERT_FILE": fake.ca_bundle}
    out = fakebase.run_python(["-c", code], env=env)
    assert out.strip() == "200"
    env["SSL_CERT_FILE"] = os.devnull
    with pytest.raises(RuntimeError, match="CERTIFICATE_VERIFY_FAILED"):
        fakebase.run_python(["-c", code], env=env)
