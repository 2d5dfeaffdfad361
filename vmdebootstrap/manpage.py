"""Generate vmdebootstrap(8) from the option table: ``python3 -m vmdebootstrap.manpage``."""

from __future__ import annotations

from . import __version__
from .config import format_value
from .options import OPTIONS

HEADER = r""".TH VMDEBOOTSTRAP 8 "" "vmdebootstrap {version}" "System Administration"
.SH NAME
vmdebootstrap \- build Debian live root filesystems, tarballs and images
.SH SYNOPSIS
.B vmdebootstrap
.RI [ options ]
.B \-\-squash
.I DIR
|
.B \-\-tarball
.I FILE
.SH DESCRIPTION
.B vmdebootstrap
bootstraps Debian with debootstrap into a private work directory, installs
packages (with their Recommends when asked), creates users, runs one customisation
hook, and writes the root filesystem as a squashfs (with the kernel and initrd
beside it, for live images) or as a tarball compressed according to its suffix.
It runs as root, in its own mount and PID namespaces: a failed or killed build
leaves no mount, process, work directory or partial output behind.
.PP
Every option is also a key in the
.B [config]
section of an INI configuration file (or under a top-level
.B config:
mapping in YAML). Booleans accept yes/on/true/1; every boolean has a
.B \-\-no\-
form on the command line. Lists are comma separated in files and repeatable on the
command line, where they replace the list from the files. Sizes take k/m/g
(decimal) and ki/mi/gi (binary) suffixes.
.PP
Default configuration files, read in order unless
.B \-\-no\-default\-configs
is given: /etc/vmdebootstrap.conf, /etc/vmdebootstrap/*.conf,
~/.vmdebootstrap.conf, ~/.config/vmdebootstrap/*.conf (and .yaml variants).
"""

FOOTER = r""".SH HOOKS
.B \-\-customize SCRIPT
runs
.I SCRIPT ROOTDIR IMAGE
on the host before the image is finished. The environment carries ROOTDIR,
VMDEBOOTSTRAP_ARCH, VMDEBOOTSTRAP_DISTRIBUTION, VMDEBOOTSTRAP_MIRROR,
VMDEBOOTSTRAP_APT_MIRROR, VMDEBOOTSTRAP_COMPONENTS and VMDEBOOTSTRAP_HELPERS, the
path of a shell library with export_env, mount_proc, cleanup, prepare_apt_source,
replace_apt_source, apt_install, disable_daemons and remove_daemon_block.
See docs/hooks.md.
.SH EXIT STATUS
0 success; 1 the build failed (the message names the step and the command, the
log is kept); 2 bad input or a missing host tool, reported before any side effect;
128+N interrupted by signal N.
.SH FILES
/var/cache/vmdebootstrap (the package cache), /var/log/vmdebootstrap (logs when
.B \-\-log
is not given), /usr/share/doc/vmdebootstrap/examples (example configurations and
hooks), /usr/share/doc/vmdebootstrap/report.md.gz (the format of
.BR \-\-report ,
with its JSON Schema), /usr/share/doc/vmdebootstrap/junit.md.gz (that of
.BR \-\-junit ).
.SH SEE ALSO
debootstrap(8), mksquashfs(1), live-boot(7)
"""


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("-", "\\-")


def render() -> str:
    out = [HEADER.format(version=__version__)]
    group = ""
    for option in OPTIONS:
        if option.group != group:
            group = option.group
            out.append(f".SH {_escape(group.upper())}")
        flag = f"\\-\\-{_escape(option.name)}"
        if option.kind == "bool":
            flag += f", \\-\\-no\\-{_escape(option.name)}"
        elif option.metavar:
            flag += f" \\fI{_escape(option.metavar)}\\fR"
        out.append(".TP")
        out.append(f".B {flag}")
        text = option.help
        default = format_value(option, option.default)
        if default and not option.secret and option.kind != "bool":
            text += f" (default: {default})"
        elif option.kind == "bool" and option.default:
            text += " (default: on)"
        out.append(_escape(text))
    out.append(FOOTER)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
