"""proxy_extra_directives, the raw escape hatch (security review, item 13): its lines sit inside
every vhost (through the routes file) before the ProxyPass routes, so that an exclusion takes
effect, and Apache's configtest still checks them before any reload."""
from pathlib import Path
from types import SimpleNamespace

import pytest

from provision.inventory import load
from provision.platforms import DEBIAN, REDHAT
from provision.resources import File
from provision.roles import proxy

ROOT = Path(__file__).resolve().parents[3]
PROXY_DOCS = (ROOT / "docs" / "proxy.md").read_text()
SECURITY_DOCS = (ROOT / "docs" / "security.md").read_text()


@pytest.fixture
def inventory():
    inv = load(ROOT / "inventory/lab.yml")
    inv.hosts["proxy"].vars["proxy_extra_directives"] = ["ProxyPass /whoami !", "Header set X-Extra yes"]
    return inv


@pytest.mark.parametrize("mode", ["balancer", "single"])
def test_extra_lines_come_before_the_routes(inventory, mode):
    (routes,) = proxy.routes(inventory.hosts["proxy"], DEBIAN, inventory, SimpleNamespace(mode=mode)).values()
    lines = routes.splitlines()
    exclusion = lines.index("ProxyPass /whoami !")
    catch_all = next(i for i, line in enumerate(lines) if line.startswith("ProxyPass / "))
    assert exclusion < catch_all
    assert "bypass every guard" in routes


@pytest.mark.parametrize("platform", [DEBIAN, REDHAT], ids=["debian", "redhat"])
def test_extra_lines_are_configtested_before_a_reload(inventory, platform):
    resources = proxy.resources(inventory.hosts["proxy"], platform, inventory, SimpleNamespace(mode=None, tls={}))
    routes = next(r for r in resources if isinstance(r, File) and r.path == platform.routes_path)
    assert b"ProxyPass /whoami !" in routes.content
    assert routes.validate == proxy.VALIDATE and proxy.RELOAD in routes.notify
    assert proxy.handlers(None, platform)[proxy.RELOAD].script.startswith(f"{platform.apache_ctl} configtest")


def test_the_proxy_docs_name_the_escape_hatch_and_what_it_bypasses():
    assert "`proxy_extra_directives`" in PROXY_DOCS
    section = PROXY_DOCS[PROXY_DOCS.index("`proxy_extra_directives`"):][:800]
    assert "bypass" in section and "every guard" in section


def test_the_security_model_page():
    """Acceptance 5: who is trusted, what is checked, what is secret and how it is kept out of
    output, what listens where, and what the operator must provide."""
    section = SECURITY_DOCS
    for heading in ("**Who is trusted.**", "**What is checked.**", "**What is secret, and how it stays out of output.**",
                    "**What listens where.**", "**What the operator must provide.**"):
        assert heading in section
    for fact in ("inventory's author", "control machine", "Host keys", "known_hosts", "sha256",
                 "(secret: N bytes, sha256 changed)", "sudo password", "private_address", "rich rule",
                 "Require local", "never a wildcard"):
        assert fact in section, fact
