"""The load generator against a loopback server: clients keep no cookies, the slowest request is
measured, each request over load.SLOW is listed with the time it was sent, and a fresh connection
per request is closed by the server first."""
import http.server
import threading
import time

from tests.support import load


class Handler(http.server.BaseHTTPRequestHandler):
    cookies: list = []
    connection: list = []
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        Handler.cookies.append(self.headers.get("Cookie"))
        Handler.connection.append(self.headers.get("Connection"))
        if self.path == "/slow":
            time.sleep(0.3)
        if self.path == "/slower":
            time.sleep(load.SLOW + 0.1)
        self.send_response(200)
        self.send_header("Set-Cookie", "ROUTEID=.web1-hello; path=/")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_no_cookie_is_sent_back_and_the_slowest_is_measured():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = load.run(f"http://127.0.0.1:{server.server_port}/", 30, 3, 10, set())
        assert result.ok == 30 and set(Handler.cookies) == {None}
        assert 0 < result.slowest     # measured (no upper bound: a timed assertion on a shared machine is flaky)
        slow = load.run(f"http://127.0.0.1:{server.server_port}/slow", 3, 3, 10, set())
        assert slow.ok == 3 and slow.slowest >= 0.3
        print(slow.summary())
        before = time.time()
        slower = load.run(f"http://127.0.0.1:{server.server_port}/slower", 2, 2, 10, set())
        assert len(slower.slow) == 2 and all(took > load.SLOW for _, took in slower.slow)
        assert slower.sent_slow(before, time.time()) == slower.slow and slower.sent_slow(0, before) == []
        assert slow.slow == []          # 0.3 s is not slow
    finally:
        server.shutdown()


def test_a_fresh_connection_per_request_asks_the_server_to_close_it_first():
    """The server closes first, so the TIME_WAIT stays on its side, not among the client's ports."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        Handler.connection.clear()
        fresh = load.run(f"http://127.0.0.1:{server.server_port}/", 6, 2, 10, set(), headers={"Host": "a.test"})
        assert fresh.ok == 6 and Handler.connection == ["close"] * 6
        Handler.connection.clear()
        kept = load.run(f"http://127.0.0.1:{server.server_port}/", 6, 2, 10, set(), keepalive=True)
        assert kept.ok == 6 and "close" not in Handler.connection
    finally:
        server.shutdown()
