#!/usr/bin/env python3
"""A fake AWS Sign-In token endpoint (`aws login`) on 127.0.0.1: `POST /v1/token`
(CreateOAuth2Token) with both grants, and the browser side of the authorization-code flow.

`POST /v1/token` checks the DPoP proof (RFC 9449) as the service requires: a compact JWS
with header `typ=dpop+jwt`, `alg=ES256`, the public `jwk` (EC P-256); claims `htm=POST`,
`htu` = the URL called, `iat` within a window, `jti` never seen before; the ES256 signature.
A refresh token is bound to the thumbprint (RFC 7638) of the key that obtained it and rotates
at every use. Answers the service's JSON (`accessToken{accessKeyId, secretAccessKey,
sessionToken}`, `tokenType`, `expiresIn`, `refreshToken`, and `idToken` for the
authorization code) or its errors (`x-amzn-ErrorType` header, body `{"error", "message"}`:
`TOKEN_EXPIRED` 401, `USER_CREDENTIALS_CHANGED` 403, `AUTHCODE_EXPIRED` 401, ...).

`GET /v1/authorize?...` signs the configured identity in at once (no page to click) and
redirects to `redirect_uri` with `code` and `state`; for the cross-device redirect
(`{base}/v1/sessions/confirmation`) that page shows the code to paste, base64 of
`state=...&code=...`. `GET /_fake/code?<the same query>` returns that code as JSON.

Run it:  python3 tests/fakes/signin.py --port 0            (plain HTTP; `--ca-dir` for TLS)
         python3 tests/fakes/signin.py write-cache --fake-url URL --cache-dir DIR --arn ARN
Import it: `FakeSignin`, `write_login_cache`, `dpop_proof`.
Control endpoints (no auth): `GET /_fake/calls`, `POST /_fake/faults`, `POST /_fake/reset`,
`POST /_fake/sessions` (register a sign-in), `POST /_fake/session-state` (end one),
`POST /_fake/identity`, `GET /_fake/code`.
"""

import base64
import datetime
import hashlib
import json
import os
import re
import secrets
import string
import sys
import tempfile
import textwrap
import threading
import time
import urllib.parse
import urllib.request
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

import fakebase
from fakebase import Response, iso_z, json_response

CLIENT_IDS = ("arn:aws:signin:::devtools/same-device", "arn:aws:signin:::devtools/cross-device")
CONFIRMATION_PATH = "/v1/sessions/confirmation"
SESSION_MAX_AGE = 12 * 3600
ACCESS_TOKEN_SECONDS = 900
CODE_TTL = 300
CODE_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
LOGIN_SESSION_RE = re.compile(r"^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):\S+$")
#: Status of each AccessDeniedException code (the service model's "Runtime HTTP Status Code Mapping").
ACCESS_DENIED_STATUS = {"TOKEN_EXPIRED": 401, "AUTHCODE_EXPIRED": 401,
                        "USER_CREDENTIALS_CHANGED": 403, "INSUFFICIENT_PERMISSIONS": 403}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwk_of(public_key):
    numbers = public_key.public_numbers()
    return {"kty": "EC", "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}


def jwk_thumbprint(jwk):
    """RFC 7638: SHA-256 over the required members in lexical order, base64url."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def dpop_proof(private_key, htu, htm="POST", iat=None, jti=None, header_extra=None, claims_extra=None):
    """A DPoP proof as botocore and aws-config make it (for tests that need their own)."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk_of(private_key.public_key())}
    header.update(header_extra or {})
    payload = {"jti": str(uuid.uuid4()) if jti is None else jti, "htm": htm, "htu": htu,
               "iat": int(time.time()) if iat is None else iat}
    payload.update(claims_extra or {})
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(payload, separators=(",", ":")).encode()))
    r, s = decode_dss_signature(private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def sec1_pem(private_key):
    """The `dpopKey` PEM as the AWS CLI writes it: SEC1 `EC PRIVATE KEY`, 64-column lines."""
    der = private_key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
    body = textwrap.fill(base64.b64encode(der).decode(), width=64)
    return f"-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----\n"


class Refused(Exception):
    def __init__(self, status, code, error, message):
        super().__init__(message)
        self.status, self.code, self.error, self.message = status, code, error, message


def access_denied(error, message):
    return Refused(ACCESS_DENIED_STATUS[error], "AccessDeniedException", error, message)


def validation(error, message):
    return Refused(400, "ValidationException", error, message)


def _random(alphabet, n):
    return "".join(secrets.choice(alphabet) for _ in range(n))


class SignInSession:
    def __init__(self, arn, client_id, jkt, started_at, max_age):
        self.id = str(uuid.uuid4())
        self.arn = arn
        self.account = LOGIN_SESSION_RE.match(arn).group(1)
        self.client_id = client_id
        self.jkt = jkt
        self.started_at = started_at
        self.max_age = max_age
        self.ended = None  # None, or the AccessDeniedException code it now answers


class FakeSignin(fakebase.FakeService):
    """The fake. `identity`: the ARN a browser sign-in signs in as. `reuse_window`: seconds
    during which a just-rotated refresh token still gets the same answer (the service model
    calls refresh "idempotent within token validity window"; 0 = refused at once)."""

    name = "signin"
    service_paths = (("POST", "/v1/token"),)

    def __init__(self, *, identity="arn:aws:iam::111122223333:user/alice", session_max_age=SESSION_MAX_AGE,
                 access_token_seconds=ACCESS_TOKEN_SECONDS, iat_window=300, reuse_window=0,
                 code_ttl=CODE_TTL, **kwargs):
        super().__init__(**kwargs)
        self.identity = identity
        self.session_max_age = session_max_age
        self.access_token_seconds = access_token_seconds
        self.iat_window = iat_window
        self.reuse_window = reuse_window
        self.code_ttl = code_ttl
        self._lock = threading.Lock()
        self.sessions = {}        # session id -> SignInSession
        self.refresh_tokens = {}  # token -> {"session", "used_at", "answer"}
        self.codes = {}           # code -> {...}
        self.jtis = {}            # jti -> time seen
        self._id_key = ec.generate_private_key(ec.SECP384R1())
        self._id_kid = str(uuid.uuid4())

    # ---- sign-ins --------------------------------------------------------------------------
    def register_session(self, arn, jkt, client_id=CLIENT_IDS[0], started_at=None):
        """A sign-in as `aws login` leaves it: returns the token output plus `expiresAt`
        (what a cache file is written from)."""
        if not LOGIN_SESSION_RE.match(arn):
            raise ValueError(f"not a login session ARN: {arn}")
        if client_id not in CLIENT_IDS:
            raise ValueError(f"unknown clientId {client_id}")
        started_at = time.time() if started_at is None else started_at
        with self._lock:
            session = SignInSession(arn, client_id, jkt, started_at, self.session_max_age)
            self.sessions[session.id] = session
            answer = self._token_output(session, with_id_token=True)
        answer["expiresAt"] = iso_z(datetime.datetime.now(datetime.timezone.utc)
                                    + datetime.timedelta(seconds=answer["expiresIn"]))
        answer["accountId"] = session.account
        answer["clientId"] = client_id
        return answer

    def end_sessions(self, arn, error="TOKEN_EXPIRED"):
        """From now on every refresh of `arn`'s sign-ins answers `error` (None: works again)."""
        if error is not None and error not in ACCESS_DENIED_STATUS:
            raise ValueError(f"unknown error {error}")
        with self._lock:
            hits = [s for s in self.sessions.values() if s.arn == arn]
            for s in hits:
                s.ended = error
        return len(hits)

    def _token_output(self, session, with_id_token):
        """Called with the lock held: new credentials and a new refresh token."""
        token = "ASOR" + b64url(secrets.token_bytes(96))
        self.refresh_tokens[token] = {"session": session.id, "used_at": None, "answer": None}
        left = session.started_at + session.max_age - time.time()
        out = {
            "accessToken": {
                "accessKeyId": "ASIA" + _random(string.ascii_uppercase + string.digits, 16),
                "secretAccessKey": _random(string.ascii_letters + string.digits + "/+", 40),
                "sessionToken": base64.b64encode(secrets.token_bytes(300)).decode(),
            },
            "tokenType": "aws_sigv4",
            "expiresIn": max(1, min(self.access_token_seconds, int(left))),
            "refreshToken": token,
        }
        if with_id_token:
            out["idToken"] = self._id_token(session)
        return out

    def _id_token(self, session):
        now = int(time.time())
        header = {"kid": self._id_kid, "typ": "JWT", "alg": "ES384"}
        claims = {"sub": session.arn, "aud": session.client_id.replace(":devtools/", ":cli/"),
                  "iss": "https://signin.aws.amazon.com/signin", "session_arn": session.arn,
                  "exp": now + 900, "iat": int(session.started_at)}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        r, s = decode_dss_signature(self._id_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA384())))
        return signing_input + "." + b64url(r.to_bytes(48, "big") + s.to_bytes(48, "big"))

    def describe(self, request):
        proof = request.header("DPoP") or ""
        try:
            return {"jti": json.loads(b64url_decode(proof.split(".")[1])).get("jti")}
        except (IndexError, ValueError, AttributeError):
            return {}

    # ---- POST /v1/token --------------------------------------------------------------------
    def handle_service(self, request):
        seen = {}
        try:
            answer = self._create_token(request, seen)
        except Refused as r:
            self.record(request, status=r.status, error_type=r.code, error=r.error, message=r.message, **seen)
            return self.error_response(r.status, r.code, r.message, r.error)
        self.record(request, status=200, **seen)
        return json_response(200, answer)

    def error_response(self, status, code, message, error=None):
        error = error or {"ThrottlingException": "rate_exceeded", "TooManyRequestsError": "rate_exceeded",
                          "AccessDeniedException": "TOKEN_EXPIRED",
                          "ValidationException": "INVALID_REQUEST"}.get(code, "server_error")
        return json_response(status, {"error": error, "message": message}, {"x-amzn-ErrorType": code})

    def default_error_code(self, status):
        return {429: "TooManyRequestsError", 401: "AccessDeniedException"}.get(
            status, super().default_error_code(status))

    def _create_token(self, request, seen):
        if request.raw_query:
            raise validation("INVALID_REQUEST", "this fake serves only CreateOAuth2Token (no query)")
        body = request.json()
        if body is None:
            raise validation("INVALID_REQUEST", "the body must be a JSON object")
        grant = body.get("grantType")
        seen["grant_type"] = grant
        client_id = body.get("clientId")
        if client_id not in CLIENT_IDS:
            raise validation("invalid_client", f"unknown clientId {client_id!r}")
        jkt = self._check_dpop(request, seen)
        if grant == "refresh_token":
            return self._refresh(body, client_id, jkt, seen)
        if grant == "authorization_code":
            return self._redeem_code(body, client_id, jkt, seen)
        raise validation("unsupported_grant_type", f"unsupported grantType {grant!r}")

    def _check_dpop(self, request, seen):
        proofs = request.headers.get_all("DPoP") or []
        if len(proofs) != 1:
            raise validation("INVALID_REQUEST", "exactly one DPoP header is required")
        parts = proofs[0].split(".")
        if len(parts) != 3:
            raise validation("INVALID_REQUEST", "the DPoP proof is not a compact JWS")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except ValueError:
            raise validation("INVALID_REQUEST", "the DPoP proof does not decode")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise validation("INVALID_REQUEST", "the DPoP proof does not decode")
        if header.get("typ") != "dpop+jwt" or header.get("alg") != "ES256":
            raise validation("INVALID_REQUEST", "DPoP header must have typ dpop+jwt and alg ES256")
        jwk = header.get("jwk")
        if (not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256"
                or "d" in jwk or not isinstance(jwk.get("x"), str) or not isinstance(jwk.get("y"), str)):
            raise validation("INVALID_REQUEST", "DPoP jwk must be a public EC P-256 key")
        try:
            x = int.from_bytes(b64url_decode(jwk["x"]), "big")
            y = int.from_bytes(b64url_decode(jwk["y"]), "big")
            public_key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        except ValueError:
            raise validation("INVALID_REQUEST", "DPoP jwk is not a point on P-256")
        if len(signature) != 64:
            raise validation("INVALID_REQUEST", "an ES256 signature is 64 bytes (r||s)")
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        try:
            public_key.verify(der, (parts[0] + "." + parts[1]).encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise validation("INVALID_REQUEST", "the DPoP proof's signature does not verify")
        seen["dpop"] = "signature verified"
        if claims.get("htm") != "POST":
            raise validation("INVALID_REQUEST", "DPoP htm must be POST")
        htu = claims.get("htu")
        seen["htu"] = htu
        if not isinstance(htu, str) or not _same_url(htu, request.url()):
            raise validation("INVALID_REQUEST", f"DPoP htu {htu!r} is not the URL called ({request.url()})")
        iat = claims.get("iat")
        if isinstance(iat, bool) or not isinstance(iat, int) or abs(time.time() - iat) > self.iat_window:
            raise validation("INVALID_REQUEST", "DPoP iat is missing or outside the accepted window")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise validation("INVALID_REQUEST", "DPoP jti is required")
        seen["jti"] = jti
        now = time.time()
        with self._lock:
            for old in [k for k, t in self.jtis.items() if now - t > 2 * self.iat_window]:
                del self.jtis[old]
            if jti in self.jtis:
                raise validation("INVALID_REQUEST", "DPoP jti was already used (replay)")
            self.jtis[jti] = now
        jkt = jwk_thumbprint(jwk)
        seen["jkt"] = jkt
        seen["dpop"] = "verified"
        return jkt

    def _refresh(self, body, client_id, jkt, seen):
        token = body.get("refreshToken")
        if not isinstance(token, str) or not token:
            raise validation("INVALID_REQUEST", "refreshToken is required")
        now = time.time()
        with self._lock:
            entry = self.refresh_tokens.get(token)
            if entry is None:
                raise validation("invalid_grant", "the refresh token is not valid")
            session = self.sessions[entry["session"]]
            seen["login_session"] = session.arn
            if session.client_id != client_id:
                raise validation("invalid_grant", "the refresh token was issued to another client")
            if session.jkt != jkt:
                seen["key_bound"] = False
                raise validation("invalid_grant", "the DPoP key is not the one this refresh token is bound to")
            seen["key_bound"] = True
            if session.ended:
                raise access_denied(session.ended, {
                    "TOKEN_EXPIRED": "the sign-in session has expired; sign in again",
                    "USER_CREDENTIALS_CHANGED": "the user's credentials changed; sign in again",
                    "INSUFFICIENT_PERMISSIONS": "the user may not use this sign-in for programmatic access",
                }.get(session.ended, "access denied"))
            if now > session.started_at + session.max_age:
                raise access_denied("TOKEN_EXPIRED", "the sign-in session has expired; sign in again")
            if entry["used_at"] is not None:
                if now - entry["used_at"] <= self.reuse_window:
                    seen["reused"] = True
                    seen["access_key_id"] = entry["answer"]["accessToken"]["accessKeyId"]
                    return entry["answer"]
                raise validation("invalid_grant", "the refresh token was already used (it rotates)")
            answer = self._token_output(session, with_id_token=False)
            entry["used_at"], entry["answer"] = now, answer
        seen["access_key_id"] = answer["accessToken"]["accessKeyId"]
        seen["rotated"] = True
        return answer

    def _redeem_code(self, body, client_id, jkt, seen):
        code, verifier, redirect = body.get("code"), body.get("codeVerifier"), body.get("redirectUri")
        if not isinstance(code, str) or not isinstance(verifier, str):
            raise validation("INVALID_REQUEST", "code and codeVerifier are required")
        if not CODE_VERIFIER_RE.match(verifier):
            raise validation("INVALID_REQUEST", "codeVerifier must be 43-128 unreserved characters")
        with self._lock:
            entry = self.codes.get(code)
            if entry is None:
                raise validation("invalid_grant", "the authorization code is not valid")
            if entry["used"]:
                raise validation("invalid_grant", "the authorization code was already used")
            entry["used"] = True
            if time.time() > entry["issued_at"] + self.code_ttl:
                raise access_denied("AUTHCODE_EXPIRED", "the authorization code has expired")
            if entry["client_id"] != client_id:
                raise validation("invalid_grant", "the code was issued to another client")
            if entry["redirect_uri"] and entry["redirect_uri"] != redirect:
                raise validation("invalid_grant", "redirectUri does not match the authorization request")
            challenge = b64url(hashlib.sha256(verifier.encode()).digest())
            if challenge != entry["code_challenge"].rstrip("="):
                raise validation("invalid_grant", "codeVerifier does not match the code challenge")
            session = SignInSession(entry["identity"], client_id, jkt, time.time(), self.session_max_age)
            self.sessions[session.id] = session
            answer = self._token_output(session, with_id_token=True)
        seen.update(login_session=session.arn, access_key_id=answer["accessToken"]["accessKeyId"])
        return answer

    # ---- the browser side ------------------------------------------------------------------
    def _authorize(self, query, base_url, identity=None):
        """Validate an authorize query as the CLI sends it; issue a code. Returns
        (code, state, redirect_uri, cross_device)."""
        required = ("response_type", "client_id", "state", "code_challenge_method", "scope",
                    "redirect_uri", "code_challenge")
        missing = [k for k in required if not query.get(k)]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        if query["response_type"] != "code":
            raise ValueError("response_type must be code")
        if query["client_id"] not in CLIENT_IDS:
            raise ValueError(f"unknown client_id {query['client_id']}")
        if query["code_challenge_method"] not in ("SHA-256", "S256"):
            raise ValueError("code_challenge_method must be SHA-256")
        if "openid" not in query["scope"].split():
            raise ValueError("scope must include openid")
        if not re.match(r"^[A-Za-z0-9_-]{43}=?$", query["code_challenge"]):
            raise ValueError("code_challenge must be base64url of a SHA-256 digest")
        cross = query["client_id"].endswith("/cross-device")
        if cross and query["redirect_uri"] != base_url + CONFIRMATION_PATH:
            raise ValueError(f"the cross-device redirect_uri must be {base_url}{CONFIRMATION_PATH}")
        identity = identity or self.identity
        if not LOGIN_SESSION_RE.match(identity):
            raise ValueError(f"not a login session ARN: {identity}")
        code = b64url(secrets.token_bytes(32))
        with self._lock:
            self.codes[code] = {"client_id": query["client_id"], "redirect_uri": query["redirect_uri"],
                                "code_challenge": query["code_challenge"], "identity": identity,
                                "issued_at": time.time(), "used": False}
        return code, query["state"], query["redirect_uri"], cross

    def handle_other(self, request):
        base = f"{request.scheme}://{request.header('Host', '')}"
        if request.method == "GET" and request.path == "/v1/authorize":
            try:
                code, state, redirect, _ = self._authorize(request.query, base)
            except ValueError as e:
                return Response(400, f"invalid authorization request: {e}", content_type="text/plain")
            self.record(request, operation="authorize", client_id=request.query.get("client_id"))
            sep = "&" if "?" in redirect else "?"
            location = redirect + sep + urllib.parse.urlencode({"code": code, "state": state})
            return Response(302, b"", {"Location": location})
        if request.method == "GET" and request.path == CONFIRMATION_PATH:
            code, state = request.query.get("code"), request.query.get("state")
            if not code or not state:
                return Response(400, "missing code or state", content_type="text/plain")
            shown = base64.b64encode(f"state={state}&code={code}".encode()).decode()
            page = ("<!doctype html><html><body><p>Paste this code into the AWS CLI:</p>"
                    f'<code id="verification-code">{shown}</code></body></html>')
            return Response(200, page, content_type="text/html")
        return super().handle_other(request)

    # ---- control endpoints -----------------------------------------------------------------
    def control_extra(self, request):
        base = f"{request.scheme}://{request.header('Host', '')}"
        if request.path == "/_fake/code" and request.method == "GET":
            query = dict(request.query)
            identity = query.pop("identity", None)
            code, state, _, _ = self._authorize(query, base, identity)
            shown = base64.b64encode(f"state={state}&code={code}".encode()).decode()
            return json_response(200, {"code": code, "state": state, "verification_code": shown})
        if request.path == "/_fake/sessions" and request.method == "POST":
            body = request.json() or {}
            if "arn" not in body or "jkt" not in body:
                raise ValueError("arn and jkt are required")
            started = body.get("started_at")
            if started is None and "started_ago" in body:
                started = time.time() - float(body["started_ago"])
            return json_response(200, self.register_session(
                body["arn"], body["jkt"], body.get("client_id", CLIENT_IDS[0]), started))
        if request.path == "/_fake/session-state" and request.method == "POST":
            body = request.json() or {}
            if "arn" not in body:
                raise ValueError("arn is required")
            return json_response(200, {"sessions": self.end_sessions(body["arn"], body.get("error", "TOKEN_EXPIRED"))})
        if request.path == "/_fake/identity" and request.method == "POST":
            body = request.json() or {}
            if not LOGIN_SESSION_RE.match(str(body.get("arn", ""))):
                raise ValueError("arn must be a login session ARN")
            self.identity = body["arn"]
            return json_response(200, {"identity": self.identity})
        return None


def _same_url(htu, called):
    a, b = urllib.parse.urlsplit(htu), urllib.parse.urlsplit(called)
    return (a.scheme.lower(), a.netloc.lower(), a.path) == (b.scheme.lower(), b.netloc.lower(), b.path)


# ---- the login cache, as the AWS CLI writes it --------------------------------------------

def login_cache_path(cache_dir, login_session):
    """`hex(sha256(login_session)).json` in the cache folder (botocore `generate_login_cache_key`)."""
    return os.path.join(cache_dir, hashlib.sha256(login_session.encode("utf-8")).hexdigest() + ".json")


def write_login_cache(cache_dir, login_session, registration, private_key, expired=True,
                      sign_in_region=None):
    """Write the cache file `aws login` leaves, from a `register_session` answer and the DPoP
    key it was registered with. `expired`: the 15-minute credentials already ran out (so the
    next reader refreshes). Written 0600, atomically."""
    expires_at = registration["expiresAt"]
    if expired:
        expires_at = iso_z(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1))
    token = {
        "accessToken": dict(registration["accessToken"], accountId=registration["accountId"],
                            expiresAt=expires_at),
        "tokenType": registration["tokenType"],
        "clientId": registration["clientId"],
        "refreshToken": registration["refreshToken"],
        "idToken": registration["idToken"],
        "dpopKey": sec1_pem(private_key),
    }
    if sign_in_region:
        token["signInRegion"] = sign_in_region
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    path = login_cache_path(cache_dir, login_session)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(token, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def new_login(fake, cache_dir, login_session, expired=True, started_at=None, private_key=None,
              client_id=CLIENT_IDS[0], sign_in_region=None):
    """A sign-in registered with an in-process fake and its cache file: (path, key, registration)."""
    key = private_key or ec.generate_private_key(ec.SECP256R1())
    registration = fake.register_session(login_session, jwk_thumbprint(jwk_of(key.public_key())),
                                         client_id, started_at)
    return write_login_cache(cache_dir, login_session, registration, key, expired, sign_in_region), key, registration


def _write_cache_command(argv):
    p = fakebase.parser("Register a sign-in with a running fake and write its login cache file")
    p.add_argument("--fake-url", required=True)
    p.add_argument("--cache-dir", required=True)
    p.add_argument("--arn", required=True, help="the login_session ARN")
    p.add_argument("--valid", action="store_true", help="credentials not yet expired (default: expired)")
    p.add_argument("--started-ago", type=float, default=0.0, help="the sign-in began this many seconds ago")
    p.add_argument("--client-id", default=CLIENT_IDS[0])
    p.add_argument("--sign-in-region", default=None)
    args = p.parse_args(argv)
    key = ec.generate_private_key(ec.SECP256R1())
    body = json.dumps({"arn": args.arn, "jkt": jwk_thumbprint(jwk_of(key.public_key())),
                       "client_id": args.client_id, "started_ago": args.started_ago}).encode()
    req = urllib.request.Request(args.fake_url.rstrip("/") + "/_fake/sessions", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        registration = json.loads(r.read())
    print(write_login_cache(args.cache_dir, args.arn, registration, key, not args.valid, args.sign_in_region))
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["write-cache"]:
        return _write_cache_command(argv[1:])
    p = fakebase.parser(__doc__.splitlines()[0])
    fakebase.add_common_args(p)
    p.add_argument("--ca-dir", default=None, help="serve HTTPS with a test CA written here (default: HTTP)")
    p.add_argument("--identity", default="arn:aws:iam::111122223333:user/alice",
                   help="who a browser sign-in signs in as")
    p.add_argument("--session-max-age", type=int, default=SESSION_MAX_AGE,
                   help="seconds a sign-in can be refreshed (12 h)")
    p.add_argument("--access-token-seconds", type=int, default=ACCESS_TOKEN_SECONDS, help="expiresIn (900)")
    p.add_argument("--iat-window", type=int, default=300, help="accepted DPoP iat skew, seconds")
    p.add_argument("--reuse-window", type=float, default=0.0,
                   help="seconds a rotated refresh token still gets the same answer")
    p.add_argument("--code-ttl", type=int, default=CODE_TTL, help="authorization code lifetime, seconds")
    args = p.parse_args(argv)
    fake = FakeSignin(identity=args.identity, session_max_age=args.session_max_age,
                      access_token_seconds=args.access_token_seconds, iat_window=args.iat_window,
                      reuse_window=args.reuse_window, code_ttl=args.code_ttl, host=args.host,
                      port=args.port, tls_dir=args.ca_dir, record_path=args.record)
    fakebase.serve_until_stopped(fake, args, [f"identity={fake.identity}"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
