"""What every fake server shares: a real HTTP server on 127.0.0.1, served from a daemon thread."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up (timeout tests, a killed worker) is part of the
        # game, not a traceback in the test output; anything else still prints.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalHTTPServer:
    """Listens on a free port of 127.0.0.1 from construction until `close()`."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler]):
        self.server = _Server(("127.0.0.1", 0), handler_class)
        self.host = "127.0.0.1"
        self.port = self.server.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # test output stays readable
        pass

    def reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """Write one whole response; a client that already gave up (timeout tests) is not an error."""
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if self.close_connection:
                # The client asked to close (prawcore's token requests send "Connection:
                # close"). Say so, or it keeps the socket for its next request and, if our
                # FIN is late, that request (a send, not retried) dies with a reset.
                self.send_header("Connection", "close")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True
