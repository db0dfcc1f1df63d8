"""Certificates generated for the tests: self-signed, or a root -> intermediate -> leaf chain."""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, key, issuer, issuer_key, is_ca):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject))
               .issuer_name(_name(issuer)).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
    if not is_ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key, passphrase=None):
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)


def self_signed(folder, passphrase=None):
    """(certfile, keyfile) of a self-signed certificate for localhost, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _certificate("localhost", key, "localhost", key, is_ca=False)
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(_pem(certificate))
    key_path.write_bytes(_key_pem(key, passphrase))
    return str(cert_path), str(key_path)


def chained(folder):
    """(fullchain certfile, keyfile, root PEM): leaf for localhost signed by an intermediate."""
    folder.mkdir(parents=True, exist_ok=True)
    root_key, middle_key, leaf_key = (ec.generate_private_key(ec.SECP256R1())
                                      for _ in range(3))
    root = _certificate("Test Root", root_key, "Test Root", root_key, is_ca=True)
    middle = _certificate("Test Intermediate", middle_key, "Test Root", root_key, is_ca=True)
    leaf = _certificate("localhost", leaf_key, "Test Intermediate", middle_key, is_ca=False)
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(_pem(leaf) + _pem(middle))
    key_path.write_bytes(_key_pem(leaf_key))
    return str(cert_path), str(key_path), _pem(root)
