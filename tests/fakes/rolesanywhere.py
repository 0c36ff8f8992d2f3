#!/usr/bin/env python3
"""A fake IAM Roles Anywhere `CreateSession` (`POST /sessions`) over HTTPS on 127.0.0.1.

It checks a request the way the service does: the SigV4-X509 signature
(`AWS4-X509-RSA-SHA256` / `AWS4-X509-ECDSA-SHA256`, always over SHA-256 of the string to
sign, also for P-384 keys), the canonical request, `X-Amz-Date` against the clock and the
credential scope, the leaf in `X-Amz-X509` and the intermediates in `X-Amz-X509-Chain`, the
credential scope's key id (the leaf's serial in decimal), the certificate path up to the
configured trust anchor CA, the trust anchor, profile and role ARNs, and `durationSeconds`
(900-43200). It answers `201` with the service's `credentialSet` JSON, or its error JSON
(`AccessDeniedException` 403, `ValidationException` 400, `ThrottlingException` 429, ...).

Run it:  python3 tests/fakes/rolesanywhere.py --port 0 --ca-dir DIR --trust-anchor CA.pem
It prints `url=https://127.0.0.1:PORT`, `ca_bundle=DIR/ca.pem` (trust it with
`SSL_CERT_FILE` / `AWS_CA_BUNDLE`) and `ready`. Import it: `FakeRolesAnywhere(...)`.
Control endpoints (no auth): `GET /_fake/calls`, `POST /_fake/faults`, `POST /_fake/reset`.
"""

import base64
import binascii
import datetime
import hashlib
import re
import secrets
import string
import sys
import threading
import urllib.parse
import uuid

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

import fakebase
from fakebase import iso_z, json_response, utc_now

SERVICE = "rolesanywhere"
ALGORITHMS = {
    "AWS4-X509-RSA-SHA256": rsa.RSAPublicKey,
    "AWS4-X509-ECDSA-SHA256": ec.EllipticCurvePublicKey,
}
#: Headers a signer leaves out (aws/rolesanywhere-credential-helper `ignoredHeaderKeys`).
UNSIGNABLE = {"authorization", "user-agent", "x-amzn-trace-id"}
REQUIRED_SIGNED = {"host", "x-amz-date", "x-amz-x509"}
MIN_DURATION, MAX_DURATION = 900, 43200
MAX_INTERMEDIATES = 5
ARN_RE = {
    "trust-anchor": re.compile(r"^arn:aws[a-z-]*:rolesanywhere:([a-z0-9-]+):(\d{12}):trust-anchor/[0-9a-zA-Z-]+$"),
    "profile": re.compile(r"^arn:aws[a-z-]*:rolesanywhere:([a-z0-9-]+):(\d{12}):profile/[0-9a-zA-Z-]+$"),
    "role": re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$"),
}
ROLE_SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
AUTH_RE = re.compile(
    r"^(?P<alg>\S+) Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<sig>[0-9a-fA-F]+)$"
)


class Refused(Exception):
    """A request the service refuses: status, error code, message."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def denied(message):
    return Refused(403, "AccessDeniedException", message)


def invalid(message):
    return Refused(400, "ValidationException", message)


def canonical_query(raw_query):
    """SigV4 canonical query string: each name and value percent-encoded (RFC 3986
    unreserved characters kept), sorted by name then value."""
    pairs = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
    enc = [(urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~")) for k, v in pairs]
    return "&".join(f"{k}={v}" for k, v in sorted(enc))


def canonical_header_value(values):
    return ",".join(" ".join(v.split()) for v in values)


def canonical_request(request, signed_headers):
    lines = []
    for name in signed_headers:
        values = request.headers.get_all(name) or []
        lines.append(f"{name}:{canonical_header_value(values)}")
    return "\n".join([
        request.method,
        request.path or "/",
        canonical_query(request.raw_query),
        "\n".join(lines) + "\n",
        ";".join(signed_headers),
        hashlib.sha256(request.body).hexdigest(),
    ])


def verify_signature(public_key, algorithm, signature_hex, message):
    try:
        signature = binascii.unhexlify(signature_hex)
    except (binascii.Error, ValueError):
        raise denied("the signature is not hex")
    try:
        if algorithm == "AWS4-X509-RSA-SHA256":
            public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise denied("the request signature we calculated does not match the signature you provided")


def _decode_cert(b64, what):
    try:
        return x509.load_der_x509_certificate(base64.b64decode(b64.strip(), validate=True))
    except (binascii.Error, ValueError) as e:
        raise invalid(f"{what} is not a base64 DER X.509 certificate: {e}")


def _issued_by(cert, issuer):
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _check_validity(cert, now, what):
    if now < cert.not_valid_before_utc:
        raise denied(f"{what} is not yet valid (notBefore {iso_z(cert.not_valid_before_utc)})")
    if now > cert.not_valid_after_utc:
        raise denied(f"{what} has expired (notAfter {iso_z(cert.not_valid_after_utc)})")


def _is_ca(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def verify_path(leaf, intermediates, anchors, now):
    """The leaf's path through `intermediates` (any order) to one of `anchors`, checked as
    Roles Anywhere documents: X.509 v3, leaf not a CA and (when it has key usage) with
    digitalSignature, SHA-256 or stronger signatures, every certificate within its validity,
    each signed by the next."""
    if leaf.version != x509.Version.v3:
        raise denied("the end-entity certificate must be X.509 v3")
    if _is_ca(leaf):
        raise denied("the end-entity certificate must have basic constraints CA:FALSE")
    try:
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not ku.digital_signature:
            raise denied("the end-entity certificate's key usage lacks digitalSignature")
    except x509.ExtensionNotFound:
        pass
    current, path = leaf, [leaf]
    pool = list(intermediates)
    for _ in range(MAX_INTERMEDIATES + 1):
        algo = current.signature_hash_algorithm
        if algo is None or algo.name in ("md5", "sha1"):
            raise denied("certificates must be signed with SHA-256 or stronger")
        _check_validity(current, now, "the certificate" if current is leaf else "an intermediate certificate")
        for anchor in anchors:
            if _issued_by(current, anchor):
                _check_validity(anchor, now, "the trust anchor certificate")
                return path + [anchor]
        nxt = next((c for c in pool if _issued_by(current, c)), None)
        if nxt is None:
            raise denied("untrusted certificate: no path to the trust anchor")
        if not _is_ca(nxt):
            raise denied("an intermediate certificate is not a CA")
        pool.remove(nxt)
        path.append(nxt)
        current = nxt
    raise denied("the certificate chain is too long")


def _random(alphabet, n):
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _common_name(cert):
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attrs[0].value if attrs else ""


class FakeRolesAnywhere(fakebase.FakeService):
    """The fake service. `trust_anchor_pems`: PEM bytes of the CA(s) of the trust anchor.
    `roles`: the role ARNs the profile allows (default: just `role_arn`)."""

    name = "rolesanywhere"
    service_paths = (("POST", "/sessions"),)
    success_status = 201

    def __init__(self, trust_anchor_pems, tls_dir, *,
                 trust_anchor_arn="arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/11111111-2222-3333-4444-555555555555",
                 profile_arn="arn:aws:rolesanywhere:us-east-1:111122223333:profile/66666666-7777-8888-9999-000000000000",
                 role_arn="arn:aws:iam::111122223333:role/Server",
                 roles=None, region=None, profile_duration=3600, role_max_duration=43200,
                 accept_role_session_name=True, clock_skew=300, **kwargs):
        super().__init__(tls_dir=tls_dir, **kwargs)
        self.anchors = []
        for pem in trust_anchor_pems:
            self.anchors.extend(x509.load_pem_x509_certificates(pem))
        m = ARN_RE["trust-anchor"].match(trust_anchor_arn)
        if not m:
            raise ValueError(f"bad trust anchor ARN {trust_anchor_arn!r}")
        self.region = region or m.group(1)
        self.trust_anchor_arn = trust_anchor_arn
        self.profile_arn = profile_arn
        self.roles = list(roles or [role_arn])
        self.profile_duration = profile_duration
        self.role_max_duration = role_max_duration
        self.accept_role_session_name = accept_role_session_name
        self.clock_skew = clock_skew
        self._lock = threading.Lock()
        self.issued = {}  # access key id -> what it was issued for

    # ---- the operation -------------------------------------------------------------------
    def handle_service(self, request):
        seen = {}
        try:
            answer = self._create_session(request, seen)
        except Refused as r:
            self.record(request, status=r.status, error_type=r.code, message=r.message, **seen)
            return self.error_response(r.status, r.code, r.message)
        self.record(request, status=201, **seen)
        return json_response(201, answer)

    def _create_session(self, request, seen):
        now = utc_now()
        auth = request.header("Authorization")
        if not auth:
            raise denied("missing Authorization header")
        m = AUTH_RE.match(auth.strip())
        if not m:
            raise denied("malformed Authorization header")
        algorithm = m.group("alg")
        seen["algorithm"] = algorithm
        if algorithm not in ALGORITHMS:
            raise denied(f"unsupported signing algorithm {algorithm}")
        cred = m.group("cred").split("/")
        if len(cred) != 5:
            raise denied("the credential scope must be SERIAL/DATE/REGION/SERVICE/aws4_request")
        key_id, scope_date, scope_region, scope_service, terminator = cred
        seen["serial"] = key_id
        if scope_service != SERVICE or terminator != "aws4_request":
            raise denied(f"credential scope service must be {SERVICE}/aws4_request")
        if scope_region != self.region:
            raise denied(f"credential should be scoped to a valid region, not '{scope_region}'")

        amz_date = request.header("X-Amz-Date")
        if not amz_date:
            raise denied("missing X-Amz-Date")
        try:
            signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise denied(f"X-Amz-Date {amz_date!r} is not in the form YYYYMMDDTHHMMSSZ")
        if abs((now - signed_at).total_seconds()) > self.clock_skew:
            raise denied(f"signature expired or not yet valid: X-Amz-Date {amz_date} is too far from the server time")
        if scope_date != amz_date[:8]:
            raise denied("the credential scope date does not match X-Amz-Date")

        leaf_b64 = request.header("X-Amz-X509")
        if not leaf_b64:
            raise denied("missing X-Amz-X509")
        leaf = _decode_cert(leaf_b64, "X-Amz-X509")
        seen["leaf_serial"] = str(leaf.serial_number)
        chain_header = request.header("X-Amz-X509-Chain")
        intermediates = []
        if chain_header:
            parts = [p for p in chain_header.split(",") if p.strip()]
            if len(parts) > MAX_INTERMEDIATES:
                raise invalid("too many certificates in X-Amz-X509-Chain")
            intermediates = [_decode_cert(p, "X-Amz-X509-Chain") for p in parts]
        seen["chain_length"] = len(intermediates)
        if key_id != str(leaf.serial_number):
            raise denied("the credential key id is not the certificate's serial number in decimal")

        public_key = leaf.public_key()
        if not isinstance(public_key, ALGORITHMS[algorithm]):
            raise denied(f"{algorithm} does not fit the certificate's key type")
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            seen["curve"] = public_key.curve.name
            if public_key.curve.name not in ("secp256r1", "secp384r1"):
                raise denied(f"unsupported curve {public_key.curve.name}")
        elif public_key.key_size < 2048:
            raise denied("RSA keys must be at least 2048 bits")

        signed = m.group("signed").split(";")
        if signed != sorted(signed) or len(set(signed)) != len(signed) or any(h != h.lower() for h in signed):
            raise denied("SignedHeaders must be lower-case, sorted and unique")
        missing = (REQUIRED_SIGNED | ({"x-amz-x509-chain"} if chain_header else set())) - set(signed)
        if missing:
            raise denied(f"SignedHeaders must include {', '.join(sorted(missing))}")
        for name in signed:
            if name in UNSIGNABLE:
                raise denied(f"{name} must not be signed")
            if request.headers.get(name) is None:
                raise denied(f"signed header {name} is not in the request")

        creq = canonical_request(request, signed)
        string_to_sign = "\n".join([
            algorithm, amz_date, f"{scope_date}/{scope_region}/{SERVICE}/aws4_request",
            hashlib.sha256(creq.encode()).hexdigest(),
        ])
        verify_signature(public_key, algorithm, m.group("sig"), string_to_sign.encode())
        seen["signature"] = "verified"

        verify_path(leaf, intermediates, self.anchors, now)
        seen["path"] = "verified"

        params = self._params(request)
        seen.update({k: params.get(k) for k in ("trustAnchorArn", "profileArn", "roleArn",
                                                 "durationSeconds", "roleSessionName")})
        duration = self._check_params(params)
        return self._issue(params, leaf, duration, now, seen)

    def _params(self, request):
        body = request.json()
        if body is None:
            raise invalid("the request body is not a JSON object")
        params = dict(body)
        for name in ("profileArn", "roleArn", "trustAnchorArn"):
            if name in request.query:
                if name in body and body[name] != request.query[name]:
                    raise invalid(f"{name} differs between the query and the body")
                params[name] = request.query[name]
        return params

    def _check_params(self, params):
        for name, kind in (("trustAnchorArn", "trust-anchor"), ("profileArn", "profile"), ("roleArn", "role")):
            value = params.get(name)
            if not isinstance(value, str) or not value:
                raise invalid(f"{name} is required")
            if not ARN_RE[kind].match(value):
                raise invalid(f"{name} is not a valid {kind} ARN: {value}")
        if params["trustAnchorArn"] != self.trust_anchor_arn:
            raise denied("the trust anchor does not exist or is not enabled")
        if params["profileArn"] != self.profile_arn:
            raise denied("the profile does not exist or is not enabled")
        if params["roleArn"] not in self.roles:
            raise denied("the role is not in the profile's role ARNs")
        duration = params.get("durationSeconds", 3600)
        if isinstance(duration, bool) or not isinstance(duration, int):
            raise invalid("durationSeconds must be an integer")
        if not MIN_DURATION <= duration <= MAX_DURATION:
            raise invalid(f"durationSeconds must be between {MIN_DURATION} and {MAX_DURATION}")
        name = params.get("roleSessionName")
        if name is not None:
            if not self.accept_role_session_name:
                raise denied("the profile does not accept a role session name")
            if not isinstance(name, str) or not ROLE_SESSION_NAME_RE.match(name):
                raise invalid("roleSessionName must be 2-64 characters of [\\w+=,.@-]")
        return min(duration, self.profile_duration, self.role_max_duration)

    def _issue(self, params, leaf, duration, now, seen):
        role_arn = params["roleArn"]
        account, role_name = ARN_RE["role"].match(role_arn).groups()
        session_name = params.get("roleSessionName") or format(leaf.serial_number, "x")
        access_key = "ASIA" + _random(string.ascii_uppercase + string.digits, 16)
        expires = now + datetime.timedelta(seconds=duration)
        with self._lock:
            self.issued[access_key] = {"serial": str(leaf.serial_number), "role": role_arn,
                                       "expiration": iso_z(expires)}
        seen.update(access_key_id=access_key, expiration=iso_z(expires), granted_seconds=duration)
        return {
            "credentialSet": [{
                "assumedRoleUser": {
                    "arn": f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}",
                    "assumedRoleId": "AROA" + _random(string.ascii_uppercase + string.digits, 17) + ":" + session_name,
                },
                "credentials": {
                    "accessKeyId": access_key,
                    "secretAccessKey": _random(string.ascii_letters + string.digits + "/+", 40),
                    "sessionToken": base64.b64encode(secrets.token_bytes(300)).decode(),
                    "expiration": iso_z(expires),
                },
                "packedPolicySize": 0,
                "roleArn": role_arn,
                "sourceIdentity": f"CN={_common_name(leaf)}",
            }],
            "subjectArn": f"{self.trust_anchor_arn.split(':trust-anchor/')[0]}:subject/{uuid.uuid5(uuid.NAMESPACE_OID, leaf.subject.rfc4514_string())}",
        }


def main(argv=None):
    p = fakebase.parser(__doc__.splitlines()[0])
    fakebase.add_common_args(p)
    p.add_argument("--ca-dir", required=True, help="folder for the fake's own TLS test CA and certificate")
    p.add_argument("--trust-anchor", action="append", required=True, metavar="CA.pem",
                   help="PEM file of the trust anchor's CA certificate(s); repeatable")
    p.add_argument("--trust-anchor-arn", default=None)
    p.add_argument("--profile-arn", default=None)
    p.add_argument("--role-arn", action="append", default=[], help="a role the profile allows; repeatable")
    p.add_argument("--region", default=None, help="default: the trust anchor ARN's region")
    p.add_argument("--profile-duration", type=int, default=3600,
                   help="the profile's durationSeconds: longer requests are cut to it")
    p.add_argument("--refuse-role-session-name", action="store_true",
                   help="the profile does not accept roleSessionName")
    p.add_argument("--clock-skew", type=int, default=300, help="allowed X-Amz-Date skew, seconds")
    args = p.parse_args(argv)
    pems = []
    for path in args.trust_anchor:
        with open(path, "rb") as f:
            pems.append(f.read())
    kwargs = {}
    for key in ("trust_anchor_arn", "profile_arn", "region"):
        if getattr(args, key):
            kwargs[key] = getattr(args, key)
    if args.role_arn:
        kwargs["roles"] = args.role_arn
    fake = FakeRolesAnywhere(
        pems, args.ca_dir, host=args.host, port=args.port, record_path=args.record,
        profile_duration=args.profile_duration,
        accept_role_session_name=not args.refuse_role_session_name,
        clock_skew=args.clock_skew, **kwargs)
    fakebase.serve_until_stopped(fake, args, [
        f"trust_anchor_arn={fake.trust_anchor_arn}",
        f"profile_arn={fake.profile_arn}",
        f"role_arn={fake.roles[0]}",
        f"region={fake.region}",
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
