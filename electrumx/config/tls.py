"""SSL_CERTFILE and SSL_KEYFILE: loading them into the TLS context the listeners serve.

The same function checks the files at start-up and loads them for the
listeners, and again when they are reloaded (`electrumx.protocol.tls`).  A
certificate that does not parse, or a key that is encrypted or belongs to
another certificate, would otherwise surface only when the first listener
starts, after the index was opened; checking at start-up stops it with one
line instead.
"""

import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography import x509
from OpenSSL import SSL
from twisted.internet import ssl

from electrumx.config.errors import ConfigError

PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----",
                             re.DOTALL)


def load_tls_context(certfile: str, keyfile: str) -> SSL.Context:
    """The server-side TLS context of a certificate (and its chain) and its key.

    A "fullchain" file's further certificates are sent as the chain, since
    clients could not verify the first one without them.  ConfigError names
    the file at fault.
    """
    try:
        with open(certfile, "rb") as f:
            pems = PEM_CERTIFICATE.findall(f.read())
        certificates = [x509.load_pem_x509_certificate(pem) for pem in pems]
    except (OSError, ValueError):
        certificates = []
    if not certificates:
        raise ConfigError("SSL_CERTFILE", f"{certfile!r} is not a PEM certificate (and chain)")
    key = _load_private_key(keyfile)
    try:
        context = ssl.CertificateOptions(
            privateKey=key, certificate=certificates[0],
            extraCertChain=certificates[1:]).getContext()
        context.check_privatekey()
    except SSL.Error:
        raise ConfigError("SSL_KEYFILE", f"{keyfile!r} is not the private key of "
                                         f"{certfile!r}") from None
    return context


def check_tls_files(certfile: str, keyfile: str):
    """Refuse a certificate or key the ssl and wss listeners could not use."""
    load_tls_context(certfile, keyfile)


def _load_private_key(keyfile: str):
    try:
        with open(keyfile, "rb") as f:
            pem = f.read()
    except OSError as e:
        raise ConfigError("SSL_KEYFILE", f"cannot read {keyfile!r}: {e.strerror}") from None
    try:
        return load_pem_private_key(pem, password=None)
    except TypeError:       # what cryptography raises for a key needing a passphrase
        raise ConfigError("SSL_KEYFILE", f"{keyfile!r} is encrypted; give the key without "
                                         "a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError("SSL_KEYFILE", f"{keyfile!r} is not a PEM private key") from None
