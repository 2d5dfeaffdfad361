"""Step "system": host name, networking, serial console, apt sources.

Reads: settings.hostname, .networkd, .dhcp, .serial_console(_command), .configure_apt,
.mirrors, .release, .arch.  Writes files below the target (never through a symlink that
leads out of it) and enables units with systemctl in the chroot.  Undoes: nothing.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import unquote

from ..chroot import has_unit, target_path, write_file
from ..context import Context
from ..options import DEFAULT_SERIAL_COMMAND
from ..releases import Release

log = logging.getLogger("vmdebootstrap")

SECURITY_MIRROR = "http://security.debian.org/debian-security"


def hosts_file(hostname: str) -> str:
    return (
        "127.0.0.1\tlocalhost\n"
        f"127.0.1.1\t{hostname}\n\n"
        "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
        "ff02::1\t\tip6-allnodes\n"
        "ff02::2\t\tip6-allrouters\n"
    )


def networkd_dhcp_file() -> str:
    # 'e*' covers eth0 (no predictable names) and en* (predictable names) alike.
    return "[Match]\nName=e*\n\n[Network]\nDHCP=yes\n"


def ifupdown_files(enable_dhcp: bool) -> dict[str, str]:
    setup = "auto lo\niface lo inet loopback\n"
    if enable_dhcp:
        setup += "\nauto eth0\niface eth0 inet dhcp\n"
    return {
        "/etc/network/interfaces": "source-directory /etc/network/interfaces.d\n",
        "/etc/network/interfaces.d/setup": setup,
    }


# The archive keyring as the image has it: trixie's debian-archive-keyring ships .pgp (with
# .gpg a symlink to it); bookworm's ships .gpg.
ARCHIVE_KEYRINGS = ("/usr/share/keyrings/debian-archive-keyring.pgp", "/usr/share/keyrings/debian-archive-keyring.gpg")
ONE_LINE_SOURCES = "/etc/apt/sources.list"
DEB822_SOURCES = "/etc/apt/sources.list.d/debian.sources"


def apt_sources(mirror: str, release: Release, components: tuple[str, ...]) -> str:
    """The booted image's one-line sources.list: the release, its updates and security."""
    comps = " ".join(components)
    lines = [f"deb {mirror} {release} {comps}"]
    if release.updates_suite:
        lines.append(f"deb {mirror} {release}-updates {comps}")
    if release.security:
        lines.append(f"deb {SECURITY_MIRROR} {release.security} {comps}")
    return "\n".join(lines) + "\n"


def deb822_sources(mirror: str, release: Release, components: tuple[str, ...], keyring: str) -> str:
    """The booted image's debian.sources (sources.list(5), as apt's own example has it)."""
    suites = [release.name, *([f"{release}-updates"] if release.updates_suite else [])]
    stanzas = [(mirror, suites)] + ([(SECURITY_MIRROR, [release.security])] if release.security else [])
    signed = f"Signed-By: {keyring}\n" if keyring else ""
    return "\n".join(f"Types: deb\nURIs: {uris}\nSuites: {' '.join(names)}\nComponents: {' '.join(components)}\n"
                     f"{signed}" for uris, names in stanzas)


def configure_apt(ctx: Context) -> None:
    """The image's apt sources name --apt-mirror, in the format of its release; no other is left."""
    settings, root = ctx.settings, ctx.root
    mirror, release, components = settings.mirrors.image, settings.release, settings.mirrors.components
    if release.sources_format == "deb822":
        keyring = next((path for path in ARCHIVE_KEYRINGS if target_path(root, path).exists()), "")
        if not keyring:
            log.warning("the image has no Debian archive keyring: its debian.sources names none (Signed-By)")
        written = write_file(root, DEB822_SOURCES, deb822_sources(mirror, release, components, keyring))
        target_path(root, ONE_LINE_SOURCES).unlink(missing_ok=True)
    else:
        written = write_file(root, ONE_LINE_SOURCES, apt_sources(mirror, release, components))
    for extra in target_path(root, "/etc/apt/sources.list.d").glob("*"):
        if extra.suffix in (".list", ".sources") and extra != written:
            extra.unlink()


AUTH_CONF = "/etc/apt/auth.conf.d/90vmdebootstrap.conf"
_WITH_CREDENTIALS = re.compile(r"\b(?P<scheme>https?|ftp)://(?P<user>[^/\s:@]+):(?P<password>[^/\s@]*)@(?P<rest>[^\s\]]+)")


def credentials_to_auth_conf(root: Path) -> list[str]:
    """A mirror's credentials in the image's apt sources (http://user:password@host/...) go to
    an apt auth.conf(5) file only root can read; the sources keep the URL without them
    (sources.list is world-readable).  Returns the machines moved (for the log)."""
    machines: dict[str, tuple[str, str]] = {}

    def strip(match: re.Match[str]) -> str:
        machines[match["rest"]] = (unquote(match["user"]), unquote(match["password"]))
        return f"{match['scheme']}://{match['rest']}"

    parts = sorted(target_path(root, "/etc/apt/sources.list.d").glob("*"))
    for path in [target_path(root, ONE_LINE_SOURCES), *(p for p in parts if p.suffix in (".list", ".sources"))]:
        if path.is_file() and not path.is_symlink():
            text = path.read_text()
            stripped = _WITH_CREDENTIALS.sub(strip, text)
            if stripped != text:
                path.write_text(stripped)
    if machines:
        write_file(root, AUTH_CONF, "# Written by vmdebootstrap: the credentials of the mirrors in the sources.\n"
                   + "".join(f"machine {machine} login {user} password {password}\n"
                             for machine, (user, password) in machines.items()), 0o600)
    return sorted(machines)


def run(ctx: Context) -> None:
    settings, root = ctx.settings, ctx.root
    write_file(root, "/etc/hostname", settings.hostname + "\n")
    write_file(root, "/etc/hosts", hosts_file(settings.hostname))
    _networking(ctx)
    _serial_console(ctx)
    if settings.configure_apt:
        configure_apt(ctx)


def _networking(ctx: Context) -> None:
    settings, root, run = ctx.settings, ctx.root, ctx.runner.run
    if settings.networkd:
        if settings.dhcp:
            write_file(root, "/etc/systemd/network/99-dhcp.network", networkd_dhcp_file())
        if has_unit(root, "systemd-networkd.service"):
            run(["systemctl", "enable", "systemd-networkd"], chroot=root)
        else:
            log.info("no systemd-networkd in the image (no systemd); networking left unconfigured")
        if has_unit(root, "systemd-resolved.service"):
            run(["systemctl", "enable", "systemd-resolved"], chroot=root)
    else:
        for path, content in ifupdown_files(settings.dhcp).items():
            write_file(root, path, content)
        # Keep the name eth0 that the ifupdown stanza uses (#831025).
        (root / "etc/udev/rules.d").mkdir(parents=True, exist_ok=True)
        link = root / "etc/udev/rules.d/80-net-setup-link.rules"
        if not link.is_symlink() and not link.exists():
            link.symlink_to("/dev/null")


def _serial_console(ctx: Context) -> None:
    settings, root = ctx.settings, ctx.root
    if not settings.serial_console or not has_unit(root, "serial-getty@.service"):
        return
    tty = settings.serial_tty
    ctx.runner.run(["systemctl", "enable", f"serial-getty@{tty}.service"], chroot=root)
    command = settings.serial_console_command
    if command != DEFAULT_SERIAL_COMMAND:  # systemd's getty takes a drop-in for its command line
        write_file(root, f"/etc/systemd/system/serial-getty@{tty}.service.d/vmdebootstrap.conf",
                   f"[Service]\nExecStart=\nExecStart=-{command}\n")
