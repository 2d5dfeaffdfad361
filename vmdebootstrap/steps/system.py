"""System configuration: host name, networking, serial console, apt sources.

Reads: hostname, systemd-networkd, enable-dhcp, serial-console, configure-apt,
apt-mirror, mirror, components.  Writes files below the target (never through a
symlink that leads out of it) and enables units with systemctl in the chroot.
"""

from __future__ import annotations

import logging

from .. import debian
from ..chroot import has_unit, inside, write_file
from ..context import Context
from ..options import DEFAULT_SERIAL_COMMAND

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


def apt_sources(mirror: str, suite: str, components: list[str]) -> str:
    """The booted image's sources: the release, its updates and security (released suites)."""
    comps = " ".join(components)
    lines = [f"deb {mirror} {suite} {comps}"]
    if suite in debian.RELEASES and debian.at_least(suite, "bullseye"):
        lines.append(f"deb {mirror} {suite}-updates {comps}")
        lines.append(f"deb {SECURITY_MIRROR} {suite}-security {comps}")
    return "\n".join(lines) + "\n"


def configure(ctx: Context) -> None:
    settings, root, run = ctx.settings, ctx.root, ctx.runner.run
    hostname = settings.text("hostname")
    write_file(root, "/etc/hostname", hostname + "\n")
    write_file(root, "/etc/hosts", hosts_file(hostname))

    if settings.flag("systemd-networkd"):
        if settings.flag("enable-dhcp"):
            write_file(root, "/etc/systemd/network/99-dhcp.network", networkd_dhcp_file())
        if has_unit(root, "systemd-networkd.service"):
            run(["systemctl", "enable", "systemd-networkd"], chroot=root)
        else:
            log.info("no systemd-networkd in the image (no systemd); networking left unconfigured")
        if has_unit(root, "systemd-resolved.service"):
            run(["systemctl", "enable", "systemd-resolved"], chroot=root)
    else:
        for path, content in ifupdown_files(settings.flag("enable-dhcp")).items():
            write_file(root, path, content)
        # Keep the name eth0 that the ifupdown stanza uses (#831025; unreachable in the old tool).
        (root / "etc/udev/rules.d").mkdir(parents=True, exist_ok=True)
        link = root / "etc/udev/rules.d/80-net-setup-link.rules"
        if not link.is_symlink() and not link.exists():
            link.symlink_to("/dev/null")

    if settings.flag("serial-console") and has_unit(root, "serial-getty@.service"):
        tty = debian.serial_console(settings.arch)
        run(["systemctl", "enable", f"serial-getty@{tty}.service"], chroot=root)
        command = settings.text("serial-console-command")
        if command != DEFAULT_SERIAL_COMMAND:
            # The old tool wrote it into inittab (sysvinit only); systemd takes a drop-in.
            write_file(root, f"/etc/systemd/system/serial-getty@{tty}.service.d/vmdebootstrap.conf",
                       f"[Service]\nExecStart=\nExecStart=-{command}\n")

    if settings.flag("configure-apt"):
        # Fixed: the old tool did nothing unless --apt-mirror was given too.
        write_file(root, "/etc/apt/sources.list",
                   apt_sources(settings.apt_mirror, settings.suite, settings.items("components")))
        for extra in inside(root, "/etc/apt/sources.list.d").glob("*"):
            if extra.suffix in (".list", ".sources"):
                extra.unlink()
