#!/bin/sh
# The warm rebuild's hook (tests/integration/test_live.py): differs from the cold build's.
set -e
echo warm > "$1/etc/vmdebootstrap-warm-hook"
