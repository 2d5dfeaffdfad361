"""The typed values options turn into, and the parsers that make them.

Each parser takes the raw value of one option (a string, bool, int or list, as cli.py
and config.py deliver it) and returns its typed value, or raises ``Invalid`` with the
reason; settings.validate names the option and the value in front of it.  Parsers read
the filesystem at most (does a file exist?): they change nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import pwd
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import architectures
from .architectures import Architecture
from .errors import UsageError

Parser = Callable[[Any], object]


class Invalid(ValueError):
    """A value that cannot be used; the message says why (validate adds the option and value)."""


# -- small records ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Compressor:
    name: str
    max_level: int | None  # None: mksquashfs takes no -Xcompression-level for it
    space_factor: float  # a compressed tree needs at most this share of its unpacked size


# mksquashfs's compressors: the one list, read by the parser, the free-space check and the help.
COMPRESSORS = {c.name: c for c in (
    Compressor("xz", None, 0.5), Compressor("zstd", 22, 0.6), Compressor("gzip", 9, 0.6),
    Compressor("lzo", 9, 0.75), Compressor("lz4", None, 0.8), Compressor("lzma", None, 0.5),
)}


@dataclasses.dataclass(frozen=True)
class Compression:
    compressor: Compressor
    level: int | None = None

    def __str__(self) -> str:
        return self.compressor.name + (f":{self.level}" if self.level is not None else "")


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    password: str | None  # plaintext, or a crypt(3) hash when hashed is True
    hashed: bool = False

    def __repr__(self) -> str:  # keep passwords out of tracebacks and logs
        return f"User({self.name!r})"


class Bootstrapper(enum.StrEnum):
    AUTO = "auto"
    MMDEBSTRAP = "mmdebstrap"
    DEBOOTSTRAP = "debootstrap"


# -- parsers -----------------------------------------------------------------------------------

LOG_LEVELS = ("debug", "info", "warning", "error", "critical", "fatal")
_HOSTNAME_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,30}\$?$")
_STRONG_HASH_RE = re.compile(r"^\$(y|gy|7|2b|2y|6|5)\$[^:\s]+$")
_MIRROR_RE = re.compile(r"^(https?|file|ftp)://[^\s]+$")
HASHED_PREFIX = "hashed:"


def text(raw: Any) -> str:
    return str(raw)


def flag(raw: Any) -> bool:
    return bool(raw)


def number(raw: Any) -> int:
    return int(raw)


def positive(raw: Any) -> int:
    value = int(raw)
    if value < 1:
        raise Invalid("must be 1 or more")
    return value


def strings(raw: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in raw)


def choice(*choices: str) -> Parser:
    def parse(raw: Any) -> str:
        if str(raw) not in choices:
            raise Invalid(f"use {choices[0]} or {choices[1]}" if len(choices) == 2 else
                          f"use one of {', '.join(choices)}")
        return str(raw)
    return parse


SERIAL_PORT = re.compile(r"^tty[A-Za-z]+[0-9]+(,[0-9]+([noe][5-8])?)?$")


def serial_port(raw: Any) -> str:
    """ttyS0, ttyAMA0,115200, ttyS2,1500000n8: as the kernel's console= takes it."""
    text = str(raw or "")
    if text and not SERIAL_PORT.match(text):
        raise Invalid("not a serial port as console= names one (TTY or TTY,SPEED: ttyS0,115200n8)")
    return text


def path(raw: Any) -> Path | None:
    return Path(str(raw)) if raw else None


def existing_file(raw: Any) -> Path | None:
    if raw and not os.path.isfile(str(raw)):
        raise Invalid("no such file")
    return path(raw)


def qemu_binary(raw: Any) -> Path | None:
    if raw and not os.path.isfile(str(raw)):
        raise Invalid("no such file (install qemu-user-static)")
    return path(raw)


def existing_dir(raw: Any) -> Path | None:
    if raw and not os.path.isdir(str(raw)):
        raise Invalid("no such directory")
    return path(raw)


def existing_files(raw: Any) -> tuple[Path, ...]:
    for item in raw:
        if not os.path.isfile(str(item)):
            raise UsageError(f"--custom-package {item}: no such file")
    return tuple(Path(str(item)) for item in raw)


def mirror(raw: Any) -> str:
    if raw and not _MIRROR_RE.match(str(raw)):
        raise Invalid("not a mirror URL (http://, https:// or file://)")
    return str(raw)


def hostname(raw: Any) -> str:
    if not _HOSTNAME_RE.match(str(raw)):
        raise Invalid("not a valid host name")
    return str(raw)


def seconds(raw: Any) -> int:
    if not str(raw).isdigit() or int(str(raw)) <= 0:
        raise Invalid("a number of seconds")
    return int(str(raw))


def epoch(raw: Any) -> int | None:
    if not raw:
        return None
    if not str(raw).isdigit():
        raise Invalid("a number of seconds since 1970-01-01 UTC")
    return int(str(raw))


def log_level(raw: Any) -> str:
    if str(raw).lower() not in LOG_LEVELS:
        raise Invalid(f"use one of {', '.join(LOG_LEVELS)}")
    return str(raw).lower()


def file_mode(raw: Any) -> int:
    if not re.match(r"^0?[0-7]{3}$", str(raw)):
        raise Invalid("not an octal file mode")
    return int(str(raw), 8)


# debootstrap's variants that build a system as root ("": its default).  Its third,
# fakechroot, is for building without root inside fakechroot: as root it leaves
# ldconfig replaced by a stub, and no account, package or hook step works on the result.
VARIANTS = ("minbase", "buildd")


def variant(raw: Any) -> str:
    if str(raw) == "fakechroot":
        raise Invalid("debootstrap's variant for building without root under fakechroot; vmdebootstrap "
                      f"builds as root: use {' or '.join(VARIANTS)}")
    if raw and str(raw) not in VARIANTS:
        raise Invalid(f"not a debootstrap variant ({' or '.join(VARIANTS)}; without it, debootstrap's default)")
    return str(raw)


def host_user(raw: Any) -> str:
    if raw:
        try:
            pwd.getpwnam(str(raw))
        except KeyError:
            raise Invalid("no such user on this host") from None
    return str(raw)


def architecture(raw: Any) -> Architecture:
    if not raw:
        return architectures.host()
    arch = architectures.ARCHITECTURES.get(str(raw))
    if arch is None:
        raise Invalid(f"not a Debian architecture ({', '.join(sorted(architectures.ARCHITECTURES))})")
    return arch


def bootstrapper(raw: Any) -> Bootstrapper:
    try:
        chosen = Bootstrapper(str(raw))
    except ValueError:
        *first, last = Bootstrapper
        raise Invalid(f"use {', '.join(first)} or {last}") from None
    if chosen is Bootstrapper.MMDEBSTRAP and not shutil.which("mmdebstrap"):
        raise Invalid("mmdebstrap is not installed (apt-get install mmdebstrap)")
    return chosen


def compression(raw: Any) -> Compression | None:
    """'zstd:9' -> Compression(zstd, 9); empty: the release's default (settings.validate)."""
    if not raw:
        return None
    name, _, level = str(raw).partition(":")
    compressor = COMPRESSORS.get(name)
    if compressor is None:
        raise Invalid(f"use one of {', '.join(COMPRESSORS)}")
    if not level:
        return Compression(compressor)
    top = compressor.max_level
    if top is None or not level.isdigit() or not 1 <= int(level) <= top:
        raise Invalid(f"{name} levels: {f'1-{top}' if top else 'none'}")
    return Compression(compressor, int(level))


def release_compression(text: str) -> Compression:
    """A release's default compressor (releases.Release.squashfs_compression), as a value."""
    chosen = compression(text)
    assert chosen is not None, text
    return chosen


def package_names(raw: Any) -> tuple[str, ...]:
    """--package a,b as in a config file's list: package names never hold a comma."""
    return tuple(name for value in raw for name in str(value).replace(",", " ").split())


def kernel_parameters(raw: Any) -> str:
    """--kernel-append: written inside double quotes into shell-sourced files (GRUB's and
    u-boot-menu's defaults) and into menu entries' lines, so none of what would end them."""
    text = str(raw)
    bad = sorted({c for c in text if c in '"$`\\\n'})
    if bad:
        raise Invalid("kernel parameters cannot hold " + " ".join(repr(c) for c in bad) +
                      ": they are written into GRUB's, u-boot-menu's and the ISO's configuration files")
    return " ".join(text.split())


def component_names(raw: Any) -> tuple[str, ...]:
    """--components main,contrib as in a config file's list (debootstrap's --components takes
    the same): an archive component's name never holds a comma.  Each once, in the given order."""
    return tuple(dict.fromkeys(package_names(raw)))


def password(text: str, where: str) -> tuple[str, bool]:
    """(password, hashed).  'hashed:$y$...' carries a crypt(3) hash; weak ones are refused."""
    if not text.startswith(HASHED_PREFIX):
        return text, False
    crypted = text[len(HASHED_PREFIX):]
    if crypted.startswith("$1$"):
        raise UsageError(f"{where}: MD5 password hashes are too weak; use yescrypt ($y$) or SHA-512 ($6$)")
    if not _STRONG_HASH_RE.match(crypted):
        raise UsageError(f"{where}: not a yescrypt ($y$) or SHA-512 ($6$) hash (DES and MD5 are refused)")
    return crypted, True


def root_password(raw: Any) -> User | None:
    if not raw:
        return None
    secret, hashed = password(str(raw), "--root-password")
    return User("root", secret, hashed)


def users(raw: Any) -> tuple[User, ...]:
    """--user NAME[/PASSWORD] entries.  Errors name the user, never the password."""
    found: list[User] = []
    for entry in raw:
        name, sep, secret = str(entry).partition("/")
        if not _USERNAME_RE.match(name):
            raise UsageError(f"--user {name}: not a valid user name (lower case letters, digits, _ and -)")
        if name == "root" or any(u.name == name for u in found):
            raise UsageError(f"--user {name}: given twice (or 'root'; use --root-password for root)")
        if not sep:
            found.append(User(name, None))
            continue
        value, hashed = password(secret, f"--user {name}")
        found.append(User(name, value, hashed))
    return tuple(found)
