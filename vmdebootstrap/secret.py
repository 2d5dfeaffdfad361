"""Secrets kept out of what the build says about itself: the credentials of a mirror URL
(``http://user:password@host/``) in the log, on the terminal, in error messages, in
``--dump-config`` and in the report.  Passwords of accounts never reach those at all
(options marked ``secret`` are redacted by name: options.redacted)."""

from __future__ import annotations

import logging
import re

REDACTED = "<secret>"
# scheme://user:password@ -- the user is kept (it says which account), the password goes.
_CREDENTIALS = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")


def without_credentials(text: str) -> str:
    return _CREDENTIALS.sub(rf"\g<head>:{REDACTED}@", text)


class CredentialsFilter(logging.Filter):
    """For a log handler: every record leaves with the credentials of its URLs redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = without_credentials(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
