"""The load generator against a loopback server: clients keep no cookies, the slowest request is
measured."""
import http.server
import threading
import time

from tests.support import load


class Handler(http.server.BaseHTTPRequestHandler):
    cookies: list = []

    def do_GET(self):
        Handler.cookies.append(self.headers.get("Cookie"))
        if self.path == "/slow":
            time.sleep(0.3)
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
    finally:
        server.shutdown()
