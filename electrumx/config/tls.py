"""SSL_CERTFILE and SSL_KEYFILE, loaded at start-up as the TLS listeners will load them.

A certificate that does not parse, or a key that is encrypted or belongs to
another certificate, would otherwise surface only when the first listener
starts, after the index was opened; checking here stops start-up with one
line instead.
"""

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from OpenSSL import SSL, crypto

from electrumx.config.errors import ConfigError


def check_tls_files(certfile: str, keyfile: str):
    """Refuse a certificate or key the ssl and wss listeners could not use."""
    context = SSL.Context(SSL.TLS_METHOD)
    with open(certfile, "rb") as f:
        try:
            crypto.load_certificate(crypto.FILETYPE_PEM, f.read())
            context.use_certificate_chain_file(certfile)
        except (crypto.Error, SSL.Error):
            raise ConfigError("SSL_CERTFILE",
                              f"{certfile!r} is not a PEM certificate (and chain)") from None
    key = _load_private_key(keyfile)
    try:
        context.use_privatekey(key)
        context.check_privatekey()
    except SSL.Error:
        raise ConfigError("SSL_KEYFILE", f"{keyfile!r} is not the private key of "
                                         f"{certfile!r}") from None


def _load_private_key(keyfile: str):
    with open(keyfile, "rb") as f:
        pem = f.read()
    try:
        return load_pem_private_key(pem, password=None)
    except TypeError:       # what cryptography raises for a key needing a passphrase
        raise ConfigError("SSL_KEYFILE", f"{keyfile!r} is encrypted; give the key without "
                                         "a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError("SSL_KEYFILE", f"{keyfile!r} is not a PEM private key") from None
