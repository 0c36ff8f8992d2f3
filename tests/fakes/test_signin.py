"""Proof that the fake Sign-In service (signin.py) works with real botocore (with awscrt, its
DPoP signer) the way `aws login` sessions do: an expired login cache makes botocore call
`POST /v1/token` with a DPoP proof, get new credentials and rewrite the cache with the
rotated refresh token; a cache whose `dpopKey` is another key is refused; a replayed DPoP
`jti` is refused; an ended sign-in is `TOKEN_EXPIRED`. The authorization-code exchange of
`aws login --remote` is driven with botocore's own signin client and DPoP handler. The
scripted misbehaviour and the command-line runner are checked too.
"""

import base64
import datetime
import hashlib
import http.client
import json
import os
import secrets
import signal
import stat
import string
import time
import urllib.parse
import urllib.request

import botocore
import botocore.session
import pytest
from awscrt.crypto import EC
from botocore.config import Config
from botocore.credentials import _build_add_dpop_header_handler, _build_dpop_header
from botocore.exceptions import ClientError, LoginRefreshRequired
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import fakebase
import signin
from signin import FakeSignin, jwk_of, jwk_thumbprint, login_cache_path, new_login

HERE = os.path.dirname(os.path.abspath(__file__))
ALICE = "arn:aws:iam::111122223333:user/alice"
BOB = "arn:aws:sts::444455556666:assumed-role/Admin/bob"
CLI_FIELDS = {"accessToken", "tokenType", "clientId", "refreshToken", "idToken", "dpopKey"}
AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CA_BUNDLE")


@pytest.fixture(scope="module")
def fake():
    f = FakeSignin(identity=ALICE)
    f.start()
    yield f
    f.stop()


@pytest.fixture
def aws(fake, tmp_path, monkeypatch):
    """A temp AWS config with a `login_session` profile, botocore pointed at the fake."""
    fake.faults.reset()
    fake.calls.reset()
    config = tmp_path / "config"
    config.write_text(f"[profile console]\nlogin_session = {ALICE}\nregion = us-east-1\n\n"
                      f"[profile other]\nlogin_session = {BOB}\nregion = eu-west-1\n")
    for name in AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    cache = tmp_path / "login-cache"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_LOGIN_CACHE_DIRECTORY", str(cache))
    monkeypatch.setenv("AWS_ENDPOINT_URL_SIGNIN", fake.url)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return cache


def botocore_credentials(profile="console"):
    session = botocore.session.Session(profile=profile)
    creds = session.get_credentials()
    assert creds is not None and creds.method == "login"
    return creds.get_frozen_credentials()


def read_cache(path):
    with open(path) as f:
        return json.load(f)


def set_expired(path):
    token = read_cache(path)
    token["accessToken"]["expiresAt"] = "2020-01-01T00:00:00Z"
    with open(path, "w") as f:
        json.dump(token, f)


def post_token(fake, body, dpop=None, url=None, extra_headers=None):
    url = url or fake.url + "/v1/token"
    headers = {"Content-Type": "application/json"}
    if dpop is not None:
        headers["DPoP"] = dpop
    headers.update(extra_headers or {})
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def refresh_body(token):
    return {"clientId": token["clientId"], "grantType": "refresh_token", "refreshToken": token["refreshToken"]}


def crt_key(private_key):
    der = private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
    return EC.new_key_from_der_data(der)


# ---- botocore refreshes through the fake ---------------------------------------------------

def test_botocore_refreshes_and_rewrites_the_cache(fake, aws):
    path, key, _ = new_login(fake, str(aws), ALICE, expired=True)
    before = read_cache(path)
    before["x-not-from-the-cli"] = {"kept": True}  # does botocore keep fields it does not know?
    with open(path, "w") as f:
        json.dump(before, f)

    creds = botocore_credentials()

    [call] = fake.calls.snapshot()
    assert call["status"] == 200 and call["grant_type"] == "refresh_token"
    assert call["dpop"] == "verified" and call["key_bound"] is True and call["rotated"] is True
    assert call["htu"] == fake.url + "/v1/token"
    assert call["login_session"] == ALICE
    assert creds.access_key == call["access_key_id"]

    after = read_cache(path)
    assert after["refreshToken"] != before["refreshToken"] and after["refreshToken"].startswith("ASOR")
    assert after["accessToken"]["accessKeyId"] == creds.access_key
    assert after["accessToken"]["secretAccessKey"] == creds.secret_key
    assert after["accessToken"]["sessionToken"] == creds.token
    assert after["accessToken"]["accountId"] == "111122223333"
    expires = datetime.datetime.strptime(after["accessToken"]["expiresAt"], "%Y-%m-%dT%H:%M:%SZ")
    left = expires.replace(tzinfo=datetime.timezone.utc) - datetime.datetime.now(datetime.timezone.utc)
    assert 800 < left.total_seconds() <= 900
    for field in ("tokenType", "clientId", "idToken", "dpopKey", "x-not-from-the-cli"):
        assert after[field] == before[field], field
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    # The rotated-out refresh token is refused; the new one is what works.
    status, headers, answer = post_token(fake, refresh_body(before), signin.dpop_proof(key, fake.url + "/v1/token"))
    assert status == 400 and answer["error"] == "invalid_grant" and headers["x-amzn-ErrorType"] == "ValidationException"

    # A second reader (another botocore process, or awscredd) refreshes from what botocore wrote.
    set_expired(path)
    creds2 = botocore_credentials()
    assert creds2.access_key != creds.access_key
    assert read_cache(path)["refreshToken"] != after["refreshToken"]


def test_botocore_does_not_call_while_credentials_are_fresh(fake, aws):
    path, _, registration = new_login(fake, str(aws), ALICE, expired=False)
    creds = botocore_credentials()
    assert creds.access_key == registration["accessToken"]["accessKeyId"]
    assert fake.calls.count() == 0


def test_cache_with_another_key_is_refused(fake, aws):
    path, _, _ = new_login(fake, str(aws), ALICE, expired=True)
    token = read_cache(path)
    token["dpopKey"] = signin.sec1_pem(ec.generate_private_key(ec.SECP256R1()))
    with open(path, "w") as f:
        json.dump(token, f)
    before = open(path).read()
    with pytest.raises(ClientError) as e:
        botocore_credentials()
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert e.value.response["error"] == "invalid_grant"
    [call] = fake.calls.snapshot()
    assert call["dpop"] == "verified" and call["key_bound"] is False
    assert open(path).read() == before


@pytest.mark.parametrize("error", ["TOKEN_EXPIRED", "USER_CREDENTIALS_CHANGED"])
def test_ended_sign_in_makes_botocore_ask_for_login(fake, aws, error):
    path, _, _ = new_login(fake, str(aws), ALICE, expired=True)
    fake.end_sessions(ALICE, error)
    try:
        with pytest.raises(LoginRefreshRequired):
            botocore_credentials()
        [call] = fake.calls.snapshot()
        assert call["status"] == signin.ACCESS_DENIED_STATUS[error] and call["error"] == error
    finally:
        fake.end_sessions(ALICE, None)


def test_sign_in_older_than_twelve_hours_is_token_expired(fake, aws):
    new_login(fake, str(aws), BOB, expired=True, started_at=time.time() - 12 * 3600 - 5)
    with pytest.raises(LoginRefreshRequired):
        botocore_credentials("other")
    assert fake.calls.snapshot()[0]["error"] == "TOKEN_EXPIRED"


def test_access_token_lifetime_is_cut_to_the_end_of_the_sign_in(fake, aws):
    path, _, _ = new_login(fake, str(aws), BOB, expired=True, started_at=time.time() - 12 * 3600 + 120)
    botocore_credentials("other")
    expires = read_cache(path)["accessToken"]["expiresAt"]
    left = datetime.datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc) - datetime.datetime.now(datetime.timezone.utc)
    assert left.total_seconds() <= 121


def test_reuse_window_gives_the_same_answer(fake, aws):
    path, key, _ = new_login(fake, str(aws), ALICE, expired=True)
    token = read_cache(path)
    fake.reuse_window = 5
    try:
        first = post_token(fake, refresh_body(token), signin.dpop_proof(key, fake.url + "/v1/token"))
        second = post_token(fake, refresh_body(token), signin.dpop_proof(key, fake.url + "/v1/token"))
    finally:
        fake.reuse_window = 0
    assert first[0] == second[0] == 200 and first[2] == second[2]


# ---- DPoP: botocore's own proofs, replayed and spoiled ---------------------------------------

def test_replayed_jti_is_refused(fake, aws):
    path, key, _ = new_login(fake, str(aws), ALICE, expired=True)
    url = fake.url + "/v1/token"
    jti = "8d3f1a52-0d44-4ac2-9d43-1c4f2ad1e6a1"
    token = read_cache(path)
    status, _, answer = post_token(fake, refresh_body(token), _build_dpop_header(crt_key(key), url, uid=jti))
    assert status == 200, answer
    token["refreshToken"] = answer["refreshToken"]
    status, _, answer = post_token(fake, refresh_body(token), _build_dpop_header(crt_key(key), url, uid=jti))
    assert status == 400 and "replay" in answer["message"] and answer["error"] == "INVALID_REQUEST"
    # The same request with a fresh jti goes through: the replay was the only fault.
    status, _, _ = post_token(fake, refresh_body(token), _build_dpop_header(crt_key(key), url))
    assert status == 200


@pytest.mark.parametrize("case", ["missing", "htu-other-path", "htu-other-port", "htm-get", "iat-old",
                                  "iat-future", "no-jti", "alg-es384", "typ-jwt", "private-jwk",
                                  "tampered-claims", "not-a-jws"])
def test_bad_dpop_is_refused(fake, aws, case):
    path, key, _ = new_login(fake, str(aws), ALICE, expired=True)
    url = fake.url + "/v1/token"
    proof = {
        "missing": lambda: None,
        "htu-other-path": lambda: signin.dpop_proof(key, fake.url + "/v1/token2"),
        "htu-other-port": lambda: signin.dpop_proof(key, f"http://127.0.0.1:{fake.port + 1}/v1/token"),
        "htm-get": lambda: signin.dpop_proof(key, url, htm="GET"),
        "iat-old": lambda: signin.dpop_proof(key, url, iat=int(time.time()) - 600),
        "iat-future": lambda: signin.dpop_proof(key, url, iat=int(time.time()) + 600),
        "no-jti": lambda: signin.dpop_proof(key, url, jti=""),
        "alg-es384": lambda: signin.dpop_proof(key, url, header_extra={"alg": "ES384"}),
        "typ-jwt": lambda: signin.dpop_proof(key, url, header_extra={"typ": "JWT"}),
        "private-jwk": lambda: signin.dpop_proof(key, url, header_extra={"jwk": dict(
            jwk_of(key.public_key()), d=signin.b64url(key.private_numbers().private_value.to_bytes(32, "big")))}),
        "tampered-claims": lambda: _tamper(signin.dpop_proof(key, url)),
        "not-a-jws": lambda: "not.a-jws",
    }[case]()
    token = read_cache(path)
    status, headers, answer = post_token(fake, refresh_body(token), proof)
    assert status == 400 and headers["x-amzn-ErrorType"] == "ValidationException", answer
    assert answer["error"] == "INVALID_REQUEST" and answer["message"]
    # Nothing rotated: the refresh token still works with a good proof.
    assert post_token(fake, refresh_body(token), signin.dpop_proof(key, url))[0] == 200


def _tamper(proof):
    header, claims, sig = proof.split(".")
    data = json.loads(signin.b64url_decode(claims))
    data["htu"] = data["htu"] + "?x=1"
    return ".".join([header, signin.b64url(json.dumps(data).encode()), sig])


# ---- `aws login --remote`: the authorization code with PKCE ---------------------------------

def cli_authorize_url(base, client_id, state, challenge, redirect_uri):
    """The authorize URL exactly as awscli/customizations/login/utils.py builds it."""
    query = urllib.parse.urlencode({"response_type": "code", "client_id": client_id, "state": state,
                                    "code_challenge_method": "SHA-256", "scope": "openid",
                                    "redirect_uri": redirect_uri}, quote_via=urllib.parse.quote)
    return f"{base}/v1/authorize?{query}&code_challenge={challenge[:-1]}"


def new_pkce():
    verifier = "".join(secrets.choice(string.ascii_letters + string.digits + "-._~") for _ in range(64))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode()
    return verifier, challenge


def signin_client(fake):
    session = botocore.session.Session()
    return session.create_client("signin", region_name="us-east-1", endpoint_url=fake.url,
                                 config=Config(signature_version=botocore.UNSIGNED))


def test_remote_login_code_exchange_with_botocore(fake, aws):
    client_id = "arn:aws:signin:::devtools/cross-device"
    state = "5b0f5f4c-9a0e-4d4e-8c53-7f0e2a4b1a11"
    verifier, challenge = new_pkce()
    redirect = fake.url + "/v1/sessions/confirmation"
    # The page the user opens: the fake signs ALICE in and shows the code to paste.
    with urllib.request.urlopen(cli_authorize_url(fake.url, client_id, state, challenge, redirect), timeout=10) as r:
        page = r.read().decode()
    shown = page.split('<code id="verification-code">')[1].split("</code>")[0]
    pasted = dict(urllib.parse.parse_qsl(base64.b64decode(shown).decode()))
    assert pasted["state"] == state

    key = ec.generate_private_key(ec.SECP256R1())
    client = signin_client(fake)
    client.meta.events.register("before-call.signin.CreateOAuth2Token", _build_add_dpop_header_handler(crt_key(key)))
    out = client.create_o_auth2_token(tokenInput={"clientId": client_id, "grantType": "authorization_code",
                                                  "code": pasted["code"], "codeVerifier": verifier,
                                                  "redirectUri": redirect})["tokenOutput"]
    assert out["tokenType"] == "aws_sigv4" and out["expiresIn"] == 900
    claims = json.loads(signin.b64url_decode(out["idToken"].split(".")[1]))
    assert claims["sub"] == ALICE and claims["aud"] == "arn:aws:signin:::cli/cross-device"
    call = fake.calls.snapshot()[-1]
    assert call["grant_type"] == "authorization_code" and call["dpop"] == "verified"

    # The code is single use.
    client2 = signin_client(fake)
    client2.meta.events.register("before-call.signin.CreateOAuth2Token", _build_add_dpop_header_handler(crt_key(key)))
    with pytest.raises(ClientError) as e:
        client2.create_o_auth2_token(tokenInput={"clientId": client_id, "grantType": "authorization_code",
                                                 "code": pasted["code"], "codeVerifier": verifier,
                                                 "redirectUri": redirect})
    assert e.value.response["error"] == "invalid_grant"

    # The sign-in it made is bound to that key: a cache written as the CLI writes it refreshes in botocore.
    registration = dict(out, accountId="111122223333", clientId=client_id, expiresAt="2020-01-01T00:00:00Z")
    path = signin.write_login_cache(str(aws), ALICE, registration, key, expired=True)
    assert set(read_cache(path)) == CLI_FIELDS
    creds = botocore_credentials()
    assert creds.access_key == fake.calls.snapshot()[-1]["access_key_id"]


def test_code_exchange_refusals(fake, aws):
    client_id = "arn:aws:signin:::devtools/cross-device"
    redirect = fake.url + "/v1/sessions/confirmation"
    key = ec.generate_private_key(ec.SECP256R1())

    def code_for(challenge, identity=None):
        query = {"response_type": "code", "client_id": client_id, "state": "s1", "code_challenge_method": "SHA-256",
                 "scope": "openid", "redirect_uri": redirect, "code_challenge": challenge[:-1]}
        if identity:
            query["identity"] = identity
        with urllib.request.urlopen(fake.url + "/_fake/code?" + urllib.parse.urlencode(query), timeout=10) as r:
            return json.loads(r.read())

    def exchange(code, verifier, redirect_uri=redirect):
        body = {"clientId": client_id, "grantType": "authorization_code", "code": code,
                "codeVerifier": verifier, "redirectUri": redirect_uri}
        return post_token(fake, body, signin.dpop_proof(key, fake.url + "/v1/token"))

    verifier, challenge = new_pkce()
    other_verifier, _ = new_pkce()
    status, _, answer = exchange(code_for(challenge)["code"], other_verifier)
    assert status == 400 and answer["error"] == "invalid_grant"
    status, _, answer = exchange(code_for(challenge)["code"], verifier, redirect_uri="http://127.0.0.1:1/cb")
    assert status == 400 and answer["error"] == "invalid_grant"
    fake.code_ttl = 0
    try:
        code = code_for(challenge)["code"]
        time.sleep(0.05)
        status, headers, answer = exchange(code, verifier)
    finally:
        fake.code_ttl = signin.CODE_TTL
    assert status == 401 and answer["error"] == "AUTHCODE_EXPIRED" and headers["x-amzn-ErrorType"] == "AccessDeniedException"
    got = code_for(challenge, identity=BOB)
    assert base64.b64decode(got["verification_code"]).decode() == f"state=s1&code={got['code']}"
    status, _, answer = exchange(got["code"], verifier)
    assert status == 200
    assert json.loads(signin.b64url_decode(answer["idToken"].split(".")[1]))["sub"] == BOB


# ---- the cache format -----------------------------------------------------------------------

def test_cache_file_name_and_fields(fake, tmp_path):
    # The file name of smithy-rs aws-config/test-data/login-provider-test-cases.json.
    name = login_cache_path(str(tmp_path), "arn:aws:sts::012345678910:assumed-role/Admin/admin")
    assert os.path.basename(name) == "4b0ba8f99f075c0633e122fd73346ce203a3faf18ea0310eb2d29df1bab2e255.json"
    path, key, _ = new_login(fake, str(tmp_path), ALICE)
    token = read_cache(path)
    assert set(token) == CLI_FIELDS
    assert set(token["accessToken"]) == {"accessKeyId", "secretAccessKey", "sessionToken", "accountId", "expiresAt"}
    assert token["dpopKey"].startswith("-----BEGIN EC PRIVATE KEY-----\n")
    assert all(len(line) <= 64 for line in token["dpopKey"].splitlines())
    loaded = serialization.load_pem_private_key(token["dpopKey"].encode(), None)
    assert jwk_thumbprint(jwk_of(loaded.public_key())) == jwk_thumbprint(jwk_of(key.public_key()))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# ---- scripted misbehaviour ------------------------------------------------------------------

def raw_token_call(fake, key, token):
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    try:
        body = json.dumps(refresh_body(token))
        conn.request("POST", "/v1/token", body, {"Content-Type": "application/json",
                                                  "DPoP": signin.dpop_proof(key, fake.url + "/v1/token")})
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def test_scripted_misbehaviour(fake, aws):
    path, key, _ = new_login(fake, str(aws), ALICE, expired=True)
    token = read_cache(path)
    fake.faults.script({"next": [{"status": 429}, {"status": 401, "error": "TOKEN_EXPIRED"}, {"body": "huge"},
                                 {"body": "not_json"}, {"body": "truncated"}, {"delay_ms": 300}]})
    status, headers, body = raw_token_call(fake, key, token)
    assert status == 429 and headers["x-amzn-ErrorType"] == "TooManyRequestsError"
    assert json.loads(body)["error"] == "rate_exceeded"
    status, headers, body = raw_token_call(fake, key, token)
    assert status == 401 and json.loads(body)["error"] == "TOKEN_EXPIRED"
    status, _, body = raw_token_call(fake, key, token)
    assert status == 200 and len(body) >= 2 * 1024 * 1024
    status, headers, body = raw_token_call(fake, key, token)
    assert status == 200 and headers["Content-Type"] == "text/html"
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    with pytest.raises(http.client.IncompleteRead):
        raw_token_call(fake, key, token)
    # The truncated answer was a real refresh: the token rotated; take the new one from the record.
    started = time.monotonic()
    status, _, body = raw_token_call(fake, key, token)
    assert time.monotonic() - started >= 0.3
    assert status == 400 and json.loads(body)["error"] == "invalid_grant"


def test_botocore_keeps_the_cache_when_the_answer_is_not_json(fake, aws):
    path, _, _ = new_login(fake, str(aws), ALICE, expired=True)
    before = open(path).read()
    fake.faults.script({"next": [{"body": "not_json"}]})
    with pytest.raises(Exception):
        botocore_credentials()
    assert open(path).read() == before


# ---- the command-line runner and write-cache ------------------------------------------------

def test_command_line_and_write_cache(tmp_path, monkeypatch):
    record = tmp_path / "calls.jsonl"
    proc, info = fakebase.launch([os.path.join(HERE, "signin.py"), "--port", "0", "--record", str(record),
                                  "--delay-ms", "50", "--exit-after", "60"])
    try:
        url = info["url"]
        assert url.startswith("http://127.0.0.1:") and info["identity"] == ALICE
        cache = tmp_path / "cache"
        out = fakebase.run_python([os.path.join(HERE, "signin.py"), "write-cache", "--fake-url", url,
                                   "--cache-dir", str(cache), "--arn", ALICE])
        assert out.strip() == login_cache_path(str(cache), ALICE)
        config = tmp_path / "config"
        config.write_text(f"[profile console]\nlogin_session = {ALICE}\n")
        for name in AWS_VARS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_LOGIN_CACHE_DIRECTORY", str(cache))
        monkeypatch.setenv("AWS_ENDPOINT_URL_SIGNIN", url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # botocore reads no AWS_REGION
        creds = botocore_credentials()
        entries = [json.loads(line) for line in record.read_text().splitlines()]
        assert [e["status"] for e in entries] == [200]
        assert entries[0]["access_key_id"] == creds.access_key and entries[0]["key_bound"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_botocore_retry_resends_the_same_proof(fake, aws):
    """botocore adds the DPoP header once per API call (`before-call`), so its retry of a 500
    carries the same `jti`. The fake, like a service that records a `jti` only once it has
    checked the proof, accepts it: a scripted failure does not consume the `jti`."""
    path, _, _ = new_login(fake, str(aws), ALICE, expired=True)
    fake.faults.script({"next": [{"status": 500}]})
    creds = botocore_credentials()
    first, second = fake.calls.snapshot()
    assert first["status"] == 500 and first.get("scripted") and second["status"] == 200
    assert first["jti"] == second["jti"]
    assert second["access_key_id"] == creds.access_key
