"""The customisation hook: where its helper library lives, and whether it may run as root."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def helpers_path() -> Path:
    """The shell library hooks source: ``. "$VMDEBOOTSTRAP_HELPERS"``."""
    return _PACKAGE / "data" / "customise.lib"


def trusted_owners() -> set[int]:
    """Who may own the hook and the directories above it: root, whoever runs the build, and the
    user who ran it through sudo (they could run anything as root already)."""
    owners = {0, os.geteuid()}
    if os.environ.get("SUDO_UID", "").isdigit():
        owners.add(int(os.environ["SUDO_UID"]))
    return owners


def why_untrusted(hook: Path, owners: set[int]) -> str:
    """Why someone other than ``owners`` could change what runs as root (empty: nobody can).

    As sudo refuses a sudoers file and OpenSSH an authorized_keys file: the file must not be
    writable by group or others nor owned by anyone else, and no directory above it (the path
    as given and as its symlinks resolve) may let anyone else replace it.  A directory with the
    sticky bit (/tmp) lets others add names, not replace the hook's."""
    real = Path(os.path.realpath(hook))
    problem = _unsafe(real, owners, directory=False)
    if problem:
        return problem
    for directory in dict.fromkeys([*Path(os.path.abspath(hook)).parents, *real.parents]):
        problem = _unsafe(directory, owners, directory=True)
        if problem:
            return problem
    return ""


def _unsafe(path: Path, owners: set[int], directory: bool) -> str:
    info = os.stat(path)
    mode = stat.S_IMODE(info.st_mode)
    what = f"the directory {path}" if directory else str(path)
    if info.st_uid not in owners:
        return f"{what} is owned by {_user(info.st_uid)}, who could change what runs as root"
    if mode & 0o022 and not (directory and mode & stat.S_ISVTX):
        who = "group members and others" if mode & 0o002 and mode & 0o020 else \
            "others" if mode & 0o002 else "group members"
        return f"{what} has mode {mode:04o}: {who} could change what runs as root"
    return ""


def _user(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
