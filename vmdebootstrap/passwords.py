"""Password hashes made by the host's libcrypt (libxcrypt), with a random salt or, with
--seed, a salt derived from it.

The hash is made here, with the method the release's PAM uses (releases.Release.password_hash),
and chpasswd --encrypted writes it.  The salt is random, as chpasswd's own would be, unless
the build has a --seed: then it derives from the seed and the user's name, so that the same
inputs give the same /etc/shadow and the same image (docs/reproducible.md).  A salt derived
from what everyone can read (the output's name, the release) would be the same in every
image of that name: a given password's hash could be computed once for all of them.
libxcrypt's crypt_gensalt takes the random bytes from its caller, so the salt's format and
the cost are libxcrypt's own defaults.

The plaintext stays in this process: it is on no argv, in no log.  Give a hash
(--user NAME/hashed:HASH) to keep a salt of your own.
"""

from __future__ import annotations

import ctypes
import functools
import secrets

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


def hashed(password: str, method: str, seed: str | None, user: str) -> str:
    """crypt(3) hash of ``password`` by ``method``, salted from ``seed`` and ``user`` (None: at random)."""
    lib = _libcrypt()
    random = secrets.token_bytes(SALT_BYTES) if seed is None else \
        identity.bytes_for(seed, f"password-salt:{user}", SALT_BYTES)
    setting = lib.crypt_gensalt(PREFIXES[method], 0, random, SALT_BYTES)
    if not setting:
        raise BuildError(f"the host's libcrypt cannot make a {method} salt")
    result: bytes | None = lib.crypt(password.encode(), setting)
    if not result or result.startswith(b"*"):
        raise BuildError(f"the host's libcrypt cannot hash with {method}")
    return result.decode()
