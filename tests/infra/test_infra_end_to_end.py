"""Through each proxy, from this machine, where its clients reach it (public_url, else its
address; never its private address): the apps answer as the mode promises, redirects come
back on the proxy's address (ProxyPassReverse), the client's Host header reaches the app
(ProxyPreserveHost)."""
import json

from provision import verify

# Werkzeug's 404 page says "not found on the server"; Apache's own says "on this server", and a
# proxy error is a 502/503: only an app's answer passes.
APP_NOT_FOUND = "The requested URL was not found on the server."


def from_a_backend(status, body, proxy):
    """An app answered: its message, or the app's own 404 for a path it does not serve."""
    messages = set(proxy.messages)
    return (status == 200 and body in messages) or (status == 404 and APP_NOT_FOUND in body)


def test_requests_reach_apps(proxy, http_get, rotation):
    if proxy.redirect:
        # tls_redirect: plain http answers 301 to https, but the health path is still proxied.
        status, headers, body = http_get(proxy.base, "/")
        assert status == 301 and headers.get("Location", "").startswith("https://"), \
            f"{proxy.name}: tls_redirect: {proxy.base} answered {status} {headers.get('Location')!r}"
        status, headers, body = http_get(proxy.base, proxy.health_path)
        assert from_a_backend(status, body, proxy), \
            f"{proxy.name}: tls_redirect: the health path {proxy.health_path} answered {status} on :80, " \
            f"not an app's answer: {body[:120]!r}"
        return
    problem = rotation(proxy)
    assert problem is None, f"{proxy.name}: through {proxy.base} ({proxy.mode} mode): {problem}"


def test_redirect_on_proxy_address(proxy, http_get):
    if not proxy.demo:
        return      # /go is the demo app's; an app of your own has its own pages
    # with tls_redirect, plain http only redirects: ProxyPassReverse is checked over https
    status, headers, body = http_get(proxy.https_url if proxy.redirect else proxy.base, "/go", cafile=proxy.trust)
    assert status, f"{proxy.name}: ProxyPassReverse: {body}"
    problem = verify.redirect_problem(status, headers.get("Location", ""), proxy.address)
    assert problem is None, f"{proxy.name}: ProxyPassReverse: {problem}"


def test_host_header_preserved(proxy, http_get):
    if not proxy.demo:
        return      # /whoami is the demo app's
    status, _, body = http_get(proxy.https_url if proxy.redirect else proxy.base, "/whoami",
                               host=proxy.server_name, cafile=proxy.trust)
    assert status, f"{proxy.name}: ProxyPreserveHost: {body}"
    assert status == 200, f"{proxy.name}: ProxyPreserveHost: /whoami answered HTTP {status}"
    try:
        seen = json.loads(body).get("host")
    except (ValueError, AttributeError):
        seen = f"no JSON: {body[:100]!r}"
    assert seen == proxy.server_name, \
        f"{proxy.name}: ProxyPreserveHost: the app saw Host {seen!r}, the client sent {proxy.server_name!r}"
