"""Each proxy with tls on: port 443 listening, the served certificate chains to the inventory's CA
(or the provided chain, or the ACME CA's root) and names the proxy (tls: acme: every name it
serves), 30 days or more left (tls: acme: more than 14), and over https the apps answer as the
mode promises, with X-Forwarded-Proto: https reaching them."""
import json
import socket
import ssl
import time
from urllib.parse import urlsplit

from provision import verify


def test_port_443_listening(tls_proxy, remote):
    sockets = remote.socket.get_listening_sockets()
    assert verify.tcp_listeners(sockets, 443), \
        f"{tls_proxy.name}: nothing listens on TCP port 443 (listening: {', '.join(s for s in sockets if s.startswith('tcp'))})"


def test_certificate_chains_and_names_the_proxy(tls_proxy):
    p = tls_proxy
    try:
        context = ssl.create_default_context(cafile=p.trust)
    except (OSError, ssl.SSLError) as exc:
        assert False, f"{p.name}: cannot read the trusted certificates {p.trust}: {exc}"
    peers = {}
    where = urlsplit(p.https_url)
    for name in p.tls_names:
        try:
            with socket.create_connection((where.hostname, where.port or 443), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname=name) as tls:
                    peers[name] = tls.getpeercert()
        except ssl.SSLCertVerificationError as exc:
            assert False, f"{p.name}: {p.https_url} as {name!r}: certificate rejected: {exc.verify_message} (trusting {p.trust})"
        except OSError as exc:
            assert False, f"{p.name}: {p.https_url} as {name!r}: {exc}"
    problems = verify.certificate_problems(peers[p.tls_names[0]], p, time.time())
    assert not problems, f"{p.name}: {'; '.join(problems)}"


def test_https_requests_reach_apps(tls_proxy, rotation):
    p = tls_proxy
    problem = rotation(p, p.https_url)
    assert problem is None, f"{p.name}: through {p.https_url} ({p.mode} mode): {problem}"


def test_https_forwarded_proto_and_host(tls_proxy, http_get):
    p = tls_proxy
    status, _, body = http_get(p.https_url, "/whoami", host=p.server_name, cafile=p.trust, server_name=p.sni)
    assert status == 200, f"{p.name}: {p.https_url}whoami answered {status or body}"
    try:
        seen = json.loads(body)
    except ValueError:
        seen = {}
    assert (seen.get("host"), seen.get("x_forwarded_proto")) == (p.server_name, "https"), \
        f"{p.name}: over https the app saw Host {seen.get('host')!r} and X-Forwarded-Proto " \
        f"{seen.get('x_forwarded_proto')!r}, expected {p.server_name!r} and 'https'"
