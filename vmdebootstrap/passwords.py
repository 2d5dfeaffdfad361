"""Password hashes with a salt from the build's seed, made by the host's libcrypt (libxcrypt).

chpasswd in the target would pick a random salt: /etc/shadow, and so every output, would
differ on each build.  The hash is made here instead, with the method the release's PAM
uses (releases.Release.password_hash), and the salt derived from the seed and the user's
name; chpasswd --encrypted writes it.  libxcrypt's crypt_gensalt takes the random bytes
from its caller, so the salt's format and the cost are libxcrypt's own defaults.

The plaintext stays in this process: it is on no argv, in no log.  Give a hash
(--user NAME/HASH ... as before) to keep a salt of your own.
"""

from __future__ import annotations

import ctypes
import functools

from . import identity
from .errors import BuildError

# crypt(5): the prefix of each method's settings string.
PREFIXES = {"yescrypt": b"$y$", "sha512": b"$6$"}
SALT_BYTES = 16


@functools.cache
def _libcrypt() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libcrypt.so.1")
    except OSError as exc:
        raise BuildError(f"libcrypt.so.1 (package libcrypt1) is needed to hash passwords: {exc}") from None
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib


def hashed(password: str, method: str, seed: str, user: str) -> str:
    """crypt(3) hash of ``password`` by ``method``, salted from ``seed`` and ``user``."""
    lib = _libcrypt()
    random = identity.bytes_for(seed, f"password-salt:{user}", SALT_BYTES)
    setting = lib.crypt_gensalt(PREFIXES[method], 0, random, SALT_BYTES)
    if not setting:
        raise BuildError(f"the host's libcrypt cannot make a {method} salt")
    result: bytes | None = lib.crypt(password.encode(), setting)
    if not result or result.startswith(b"*"):
        raise BuildError(f"the host's libcrypt cannot hash with {method}")
    return result.decode()
