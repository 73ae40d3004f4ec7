"""A real HTTP server on 127.0.0.1 for the download tests: serves files the test registers, with
Range requests (206 + Content-Range, ETag/If-Range), and on request drops the connection part-way
through a file once, or stalls before the body. Every request is logged as (path, Range header).
:func:`offline_url` is a URL nothing answers (a pull while offline)."""
import hashlib
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CheckpointServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = {}          # path -> (body, content type)
        self.drop_once = {}      # path -> fraction of the body sent before the connection drops
        self.stall = set()       # paths whose body never comes
        self.log = []            # (path, Range header or None)

    def serve(self, path, body, content_type="application/octet-stream"):
        """Serve ``body`` at ``path``; returns its URL."""
        self.files[path] = (body, content_type)
        return self.url(path)

    def url(self, path):
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def ranges(self, path):
        """The Range headers of the requests for ``path``, in order (None: no Range)."""
        return [r for p, r in self.log if p == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):   # keep the test output clean
        pass

    def do_GET(self):
        server, path = self.server, self.path
        server.log.append((path, self.headers.get("Range")))
        if path not in server.files:
            self.send_error(404, "Not Found")
            return
        body, content_type = server.files[path]
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        start = self._range_start(etag)
        status = 206 if start else 200
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        if path in server.stall:
            time.sleep(3)
            return
        fraction = server.drop_once.pop(path, None)
        if fraction is not None:
            self.wfile.write(body[start:start + int(len(body) * fraction)])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def _range_start(self, etag):
        value, if_range = self.headers.get("Range"), self.headers.get("If-Range")
        if not value or not value.startswith("bytes=") or (if_range and if_range != etag):
            return 0
        return int(value[len("bytes="):].split("-")[0])


@contextmanager
def running_server():
    """A :class:`CheckpointServer` serving in a thread for the ``with`` block."""
    server = CheckpointServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def offline_url(path="/w.pt"):
    """A URL on 127.0.0.1 whose port is held (bound, not listening): connections are refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}{path}"
