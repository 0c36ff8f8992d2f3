"""Test certificates for the fakes and their tests: keys (RSA, EC P-256, EC P-384), CAs,
intermediates and leaves, the TLS certificate a fake serves on 127.0.0.1, and PEM files.

Everything here is made fresh by the caller; nothing is a real credential.
"""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_KINDS = ("rsa2048", "p256", "p384")


def make_key(kind="p256"):
    """A new private key: `rsa2048`, `p256` or `p384`."""
    if kind == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise ValueError(f"unknown key kind {kind!r}; expected one of {KEY_KINDS}")


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _name(common_name):
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "awscredd tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_cert(
    common_name,
    key,
    issuer_cert=None,
    issuer_key=None,
    ca=False,
    not_before=None,
    not_after=None,
    hash_alg=None,
    san_hosts=(),
    serial=None,
    key_usage=True,
):
    """A v3 certificate for `key`, signed by `issuer_key` (self-signed when no issuer).

    `ca` makes a CA (basic constraints CA:TRUE, keyCertSign); otherwise an end-entity
    certificate (CA:FALSE, digitalSignature, client and server auth). The signature hash is
    SHA-256 unless `hash_alg` says otherwise.
    """
    now = _now()
    not_before = not_before or now - datetime.timedelta(minutes=5)
    not_after = not_after or now + datetime.timedelta(days=2)
    if issuer_cert is None:
        issuer_name, signing_key = _name(common_name), key
    else:
        issuer_name, signing_key = issuer_cert.subject, issuer_key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if key_usage:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=not ca and isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
    if san_hosts:
        names = []
        for host in san_hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signing_key, hash_alg or hashes.SHA256())


def cert_pem(*certs):
    """PEM text of one or more certificates, concatenated."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(key, fmt="pkcs8"):
    """Unencrypted PEM of a private key: `pkcs8`, or `traditional` (PKCS#1 for RSA, SEC1 for EC)."""
    formats = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
    }
    return key.private_bytes(
        serialization.Encoding.PEM, formats[fmt], serialization.NoEncryption()
    )


def write_private(path, data):
    """Write `data` to `path` with mode 0600 (keys)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def write_public(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


class Hierarchy:
    """A root CA, optionally an intermediate, and a leaf, all of one key kind."""

    def __init__(self, kind="p256", intermediate=True, leaf_kind=None, name="test"):
        self.root_key = make_key(kind)
        self.root = make_cert(f"{name} root CA", self.root_key, ca=True)
        issuer, issuer_key = self.root, self.root_key
        self.intermediates = []
        if intermediate:
            self.inter_key = make_key(kind)
            inter = make_cert(
                f"{name} intermediate CA", self.inter_key, self.root, self.root_key, ca=True
            )
            self.intermediates.append(inter)
            issuer, issuer_key = inter, self.inter_key
        self.issuer, self.issuer_key = issuer, issuer_key
        self.leaf_key = make_key(leaf_kind or kind)
        self.leaf = make_cert(f"{name}.example.internal", self.leaf_key, issuer, issuer_key)

    def new_leaf(self, kind=None, **kwargs):
        """Another leaf from the same issuer (a renewed certificate): (cert, key)."""
        key = make_key(kind or _kind_of(self.leaf_key))
        return make_cert("renewed.example.internal", key, self.issuer, self.issuer_key, **kwargs), key

    def write(self, folder, prefix=""):
        """Write root.pem, chain.pem (intermediates), leaf.pem and leaf.key; return their paths."""
        os.makedirs(folder, exist_ok=True)
        paths = {
            "root": write_public(os.path.join(folder, f"{prefix}root.pem"), cert_pem(self.root)),
            "leaf": write_public(os.path.join(folder, f"{prefix}leaf.pem"), cert_pem(self.leaf)),
            "key": write_private(os.path.join(folder, f"{prefix}leaf.key"), key_pem(self.leaf_key)),
        }
        if self.intermediates:
            paths["chain"] = write_public(
                os.path.join(folder, f"{prefix}chain.pem"), cert_pem(*self.intermediates)
            )
        return paths


def _kind_of(key):
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa2048"
    return "p384" if key.curve.name == "secp384r1" else "p256"


def make_tls_files(folder, hosts=("127.0.0.1", "localhost")):
    """A test CA and a server certificate for `hosts`, written into `folder`.

    Returns {"ca": ca.pem, "cert": server.pem, "key": server.key}; clients trust `ca` through
    `SSL_CERT_FILE` / `AWS_CA_BUNDLE`.
    """
    os.makedirs(folder, exist_ok=True)
    ca_key = make_key("p256")
    ca = make_cert("awscredd fake services test CA", ca_key, ca=True,
                   not_after=_now() + datetime.timedelta(days=30))
    key = make_key("p256")
    cert = make_cert(hosts[0], key, ca, ca_key, san_hosts=hosts,
                     not_after=_now() + datetime.timedelta(days=30))
    return {
        "ca": write_public(os.path.join(folder, "ca.pem"), cert_pem(ca)),
        "cert": write_public(os.path.join(folder, "server.pem"), cert_pem(cert, ca)),
        "key": write_private(os.path.join(folder, "server.key"), key_pem(key)),
    }


def _load_issuer(folder):
    with open(os.path.join(folder, "issuer.pem"), "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(folder, "issuer.key"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return cert, key


def _write_leaf(folder, prefix, cert, key, key_format, with_chain_in_file=None):
    pem = cert_pem(cert) + (cert_pem(*with_chain_in_file) if with_chain_in_file else b"")
    write_public(os.path.join(folder, f"{prefix}leaf.pem"), pem)
    write_private(os.path.join(folder, f"{prefix}leaf.key"), key_pem(key, key_format))
    print(f"serial={cert.serial_number}")


def main(argv=None):
    """Test certificates from the command line, for tests in other languages:

    hierarchy --dir D [--kind K] [--no-intermediate] [--key-format pkcs8|traditional]
        writes D/root.pem (the trust anchor), D/chain.pem (the intermediate, if any),
        D/leaf.pem, D/leaf.key, and D/issuer.pem + D/issuer.key (the leaf's issuer, for `leaf`)
    leaf --dir D [--kind K] [--key-format F] [--prefix P] [--hours N] [--expired] [--chain-in-file]
        another leaf from D/issuer.*: D/Pleaf.pem, D/Pleaf.key (a renewal, or a key of another kind)
    Both print `serial=<the leaf's serial in decimal>`.
    """
    import argparse

    p = argparse.ArgumentParser(prog="pki.py", description=main.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hierarchy")
    h.add_argument("--dir", required=True)
    h.add_argument("--kind", default="p256", choices=KEY_KINDS)
    h.add_argument("--no-intermediate", action="store_true")
    h.add_argument("--key-format", default="pkcs8", choices=("pkcs8", "traditional"))
    l = sub.add_parser("leaf")
    l.add_argument("--dir", required=True)
    l.add_argument("--kind", default="p256", choices=KEY_KINDS)
    l.add_argument("--key-format", default="pkcs8", choices=("pkcs8", "traditional"))
    l.add_argument("--prefix", default="")
    l.add_argument("--hours", type=float, default=48.0, help="valid for this long from now")
    l.add_argument("--expired", action="store_true", help="expired an hour ago")
    l.add_argument("--chain-in-file", action="store_true",
                   help="append the intermediate (D/chain.pem) to the leaf's file")
    a = p.parse_args(argv)
    os.makedirs(a.dir, exist_ok=True)
    if a.cmd == "hierarchy":
        hier = Hierarchy(kind=a.kind, intermediate=not a.no_intermediate)
        paths = hier.write(a.dir)
        write_private(paths["key"], key_pem(hier.leaf_key, a.key_format))
        write_public(os.path.join(a.dir, "issuer.pem"), cert_pem(hier.issuer))
        write_private(os.path.join(a.dir, "issuer.key"), key_pem(hier.issuer_key))
        print(f"serial={hier.leaf.serial_number}")
        return 0
    issuer, issuer_key = _load_issuer(a.dir)
    now = _now()
    if a.expired:
        nb, na = now - datetime.timedelta(days=2), now - datetime.timedelta(hours=1)
    else:
        nb, na = now - datetime.timedelta(minutes=5), now + datetime.timedelta(hours=a.hours)
    key = make_key(a.kind)
    cert = make_cert("renewed.example.internal", key, issuer, issuer_key, not_before=nb, not_after=na)
    chain = None
    if a.chain_in_file:
        with open(os.path.join(a.dir, "chain.pem"), "rb") as f:
            chain = x509.load_pem_x509_certificates(f.read())
    _write_leaf(a.dir, a.prefix, cert, key, a.key_format, chain)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
