"""A real HTTP server on 127.0.0.1 for tests, served from a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer


@contextmanager
def serving(httpd: ThreadingHTTPServer) -> Iterator[None]:
    """Serve `httpd` until the block ends, then shut it down and close its socket."""
    # A short poll interval: shutdown() waits for the next poll.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
