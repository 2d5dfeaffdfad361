"""vmdebootstrap 2: build Debian live root filesystems, tarballs and images."""

__version__ = "2.0.0.dev0"
