"""Step "system": host name, networking, serial console, apt sources.

Reads: settings.hostname, .networkd, .dhcp, .serial_console(_command), .configure_apt,
.mirrors, .release, .arch.  Writes files below the target (never through a symlink that
leads out of it) and enables units with systemctl in the chroot.  Undoes: nothing.
"""

from __future__ import annotations

import logging

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


def apt_sources(mirror: str, release: Release, components: tuple[str, ...]) -> str:
    """The booted image's sources: the release, its updates and security."""
    comps = " ".join(components)
    lines = [f"deb {mirror} {release} {comps}"]
    if release.updates_suite:
        lines.append(f"deb {mirror} {release}-updates {comps}")
    if release.security:
        lines.append(f"deb {SECURITY_MIRROR} {release.security} {comps}")
    return "\n".join(lines) + "\n"


def run(ctx: Context) -> None:
    settings, root = ctx.settings, ctx.root
    write_file(root, "/etc/hostname", settings.hostname + "\n")
    write_file(root, "/etc/hosts", hosts_file(settings.hostname))
    _networking(ctx)
    _serial_console(ctx)
    if settings.configure_apt:
        write_file(root, "/etc/apt/sources.list",
                   apt_sources(settings.mirrors.image, settings.release, settings.mirrors.components))
        for extra in target_path(root, "/etc/apt/sources.list.d").glob("*"):
            if extra.suffix in (".list", ".sources"):
                extra.unlink()


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
    tty = settings.arch.serial_console
    ctx.runner.run(["systemctl", "enable", f"serial-getty@{tty}.service"], chroot=root)
    command = settings.serial_console_command
    if command != DEFAULT_SERIAL_COMMAND:  # systemd's getty takes a drop-in for its command line
        write_file(root, f"/etc/systemd/system/serial-getty@{tty}.service.d/vmdebootstrap.conf",
                   f"[Service]\nExecStart=\nExecStart=-{command}\n")
