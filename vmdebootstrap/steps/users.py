"""Step "users": root's password and the --user accounts.

Reads: settings.root_password, .lock_root, .empty_root, .users, .sudo, .force_password_change.
Writes: accounts and password hashes inside the target.  Undoes: nothing.

The programs it runs come from ``PROGRAMS``' packages: passwd is Priority required (in
every variant, minbase included); adduser is not in trixie's minbase and later, so
``packages`` asks the packages step for it whenever there are users to make.

Passwords are hashed by the method the release's PAM uses (releases.Release.password_hash)
with a random salt, or one derived from --seed (passwords.py: then the same inputs give
the same /etc/shadow), and the hash goes to chpasswd --encrypted *inside the target* on stdin:
the plaintext never appears on an argv, in ps or in the log (reliability.md §3.9).
"""

from __future__ import annotations

import logging

from .. import passwords
from ..context import Context
from ..settings import Settings
from ..values import User

log = logging.getLogger("vmdebootstrap")

# The programs this step runs in the target -> the package that has them.
PROGRAMS = {"adduser": "adduser", "passwd": "passwd", "chpasswd": "passwd", "chage": "passwd"}
# Priority: required in every release from wheezy on: every variant has it.
REQUIRED = frozenset({"passwd"})


def packages(settings: Settings) -> list[str]:
    """What the accounts need beyond every variant's base (steps/packages.py adds it)."""
    return ["adduser"] if settings.users else []


def set_password(ctx: Context, user: User) -> None:
    assert user.password is not None
    settings = ctx.settings
    crypted = user.password if user.hashed else \
        passwords.hashed(user.password, settings.release.password_hash, settings.salt_seed, user.name)
    ctx.runner.run(["chpasswd", "--encrypted"], chroot=ctx.root, input=f"{user.name}:{crypted}\n")


def run(ctx: Context) -> None:
    settings, root, run = ctx.settings, ctx.root, ctx.runner.run
    if settings.root_password:
        set_password(ctx, settings.root_password)
    elif settings.empty_root:
        log.warning("root has an EMPTY password in this image (--empty-root-password): whoever reaches its "
                    "console is root")
        run(["passwd", "--delete", "root"], chroot=root)
    else:
        if not settings.lock_root:
            # Secure by default (issue 18); a config written for the old tool says nothing of root.
            log.warning("root's password is locked, the new default (the old vmdebootstrap left it empty: "
                        "--empty-root-password does that; --lock-root-password silences this)")
        run(["passwd", "--lock", "root"], chroot=root)

    for user in settings.users:
        run(["adduser", "--disabled-password", "--gecos", user.name, user.name], chroot=root)
        if settings.sudo:
            run(["adduser", user.name, "sudo"], chroot=root)
        if user.password is not None:
            set_password(ctx, user)
        else:
            run(["passwd", "--delete", user.name], chroot=root)
            if settings.force_password_change:
                # chage -d 0: the password must be changed at the first login.
                run(["chage", "--lastday", "0", user.name], chroot=root)
