"""A Debian mirror whose Release files are not signed: a tiny HTTP proxy for the tests.

    python unsigned_mirror.py UPSTREAM PORT_FILE REQUEST_LOG

Listens on 127.0.0.1 (a free port, written to PORT_FILE once it listens), forwards
GET and HEAD to UPSTREAM (e.g. http://deb.debian.org/debian/) and answers 404 for
every InRelease and Release.gpg: the suite's Release file is then unsigned.  Each
request is appended to REQUEST_LOG as "STATUS PATH", so a test can tell what was
asked for (and that nothing was, when the build must fail before any download).
The test starts it and stops it by its PID.
"""

from __future__ import annotations

import shutil
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SIGNATURES = ("/InRelease", "/Release.gpg")
FORWARDED = ("Range", "If-Modified-Since", "If-None-Match", "If-Range")
RELAYED = ("Content-Type", "Content-Length", "Last-Modified", "ETag", "Content-Range", "Accept-Ranges")


def make_handler(upstream: str, request_log: Path) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _log(self, status: int) -> None:
            with lock, request_log.open("a") as stream:
                stream.write(f"{status} {self.path}\n")

        def _forward(self, head: bool) -> None:
            if self.path.endswith(SIGNATURES):
                self._log(404)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            request = urllib.request.Request(upstream.rstrip("/") + self.path, method="HEAD" if head else "GET",
                                             headers={k: v for k, v in self.headers.items() if k in FORWARDED})
            try:
                response = urllib.request.urlopen(request, timeout=60)
            except urllib.error.HTTPError as error:
                response = error
            with response:
                status = response.status if hasattr(response, "status") else response.code
                self._log(status)
                self.send_response(status)
                for name in RELAYED:
                    if response.headers.get(name) is not None:
                        self.send_header(name, response.headers[name])
                if response.headers.get("Content-Length") is None:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if not head:
                    try:
                        shutil.copyfileobj(response, self.wfile)
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True  # the client hung up: its business

        def do_GET(self) -> None:
            self._forward(head=False)

        def do_HEAD(self) -> None:
            self._forward(head=True)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the request log says what a test needs

    return Handler


def main() -> None:
    upstream, port_file, request_log = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(upstream, request_log))
    server.daemon_threads = True
    tmp = port_file.with_name(port_file.name + ".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.rename(port_file)  # the port appears whole, once the socket listens
    server.serve_forever()


if __name__ == "__main__":
    main()
