"""Through each proxy, where its clients reach it, by site (Host header): every route answers from its pool,
exclusions from the proxy itself, WebSocket routes switch protocols, sticky pools keep a client on one
member, the access log names the worker."""
import base64
import hashlib
import os
import time
import uuid

import pytest

from provision import verify


def test_routes_answer_from_their_pool(proxy, http_get):
    problems = []
    for probe in verify.probes(proxy.model):
        status, headers, _ = http_get(proxy.https_url if proxy.redirect else proxy.base, probe.path,
                                      host=probe.site, cafile=proxy.trust)
        problem = verify.probe_problem(probe, status, headers.get("X-Backend"), proxy.own_routes)
        if problem:
            problems.append(problem)
    assert not problems, f"{proxy.name}: {'; '.join(problems)}"


def test_websocket_routes_switch_protocols(proxy, http_get):
    """The opening handshake (RFC 6455 section 4) through the proxy: 101 and the key's answer."""
    routes = [(site, r) for site in proxy.model.sites for r in site.routes if r.websocket]
    if not routes:
        pytest.skip(f"{proxy.name}: no WebSocket route to check")
    problems = []
    for site, route in routes:
        key = base64.b64encode(os.urandom(16)).decode()
        status, headers, body = http_get(
            proxy.https_url if proxy.redirect else proxy.base, route.path, host=site.server_name,
            cafile=proxy.trust,
            headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                     "Sec-WebSocket-Key": key})
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                                .digest()).decode()
        if status != 101 or headers.get("Sec-WebSocket-Accept") != want:
            problems.append(f"{site.server_name}{route.path}: HTTP {status} {body[:80]!r}, expected 101 "
                            "Switching Protocols")
    assert not problems, f"{proxy.name}: {'; '.join(problems)}"


def test_sticky_pools_keep_a_client_on_one_member(proxy, http_get):
    url = proxy.https_url if proxy.redirect else proxy.base
    sticky = [(site, route, proxy.model.pool(route.pool)) for site in proxy.model.sites for route in site.routes
              if route.pool and not route.websocket and proxy.model.pool(route.pool).sticky
              and len(proxy.model.pool(route.pool).members) >= 2]
    if not sticky:
        pytest.skip(f"{proxy.name}: no sticky pool of two or more members to check")
    for site, route, pool in sticky:
        status, headers, _ = http_get(url, route.path, host=site.server_name, cafile=proxy.trust)
        cookie = next((c.split(";")[0] for c in headers.get_all("Set-Cookie") or []
                       if c.startswith("ROUTEID=")), None)
        assert cookie, f"{proxy.name}: {site.server_name}{route.path}: no ROUTEID cookie (HTTP {status})"
        if {m.route for m in pool.members} <= proxy.own_routes:
            continue        # apps of your own name no member (no X-Backend): the cookie is what shows
        seen = {http_get(url, route.path, host=site.server_name, cafile=proxy.trust,
                         headers={"Cookie": cookie})[1].get("X-Backend") for _ in range(2 * len(pool.members))}
        assert seen == {cookie.split(".", 1)[1]}, \
            f"{proxy.name}: {site.server_name}{route.path} with {cookie}: answered by {sorted(map(str, seen))}"


def test_access_log_names_site_worker_and_time(proxy, remote, platform, http_get):
    site = proxy.model.sites[0]
    marker = f"/provision-log-{uuid.uuid4().hex[:12]}"
    path = marker if proxy.model.short or any(r.path == "/" and r.pool for r in site.routes) else None
    assert path, f"{proxy.name}: {site.server_name} has no route at / to check the log with"
    status, headers, _ = http_get(proxy.https_url if proxy.redirect else proxy.base, path, host=site.server_name,
                                  cafile=proxy.trust)
    log = f"{platform.log_dir}/provision-{site.server_name}-access.log"
    deadline = time.monotonic() + 5
    while True:         # Apache writes the line once the answer is sent
        found = verify.access_line(remote.run("tail -n 200 %s", log).stdout, marker)
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found and "unparsed" not in found, f"{proxy.name}: {log}: line for {marker}: {found}"
    pool = proxy.model.pool(next(r.pool for r in site.routes if r.path == "/"))
    urls = {m.url() for m in pool.members} if pool.balancer else {"-"}    # single mode: no worker, Apache logs "-"
    assert found["site"] == site.server_name and found["worker"] in urls and int(found["us"]) > 0, \
        f"{proxy.name}: {log}: {found}, expected site {site.server_name} and a worker of {sorted(urls)}"
