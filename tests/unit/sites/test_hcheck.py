"""Active health: mod_proxy_hcheck where the release's Apache has it (2.4.21+), rendered per Apache
version and per route kind, chosen at plan time from the release (never from what is installed),
and the modules that follow; passive health only on httpd 2.4.6 (CentOS 7) and unknown releases."""
import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from provision.facts import Facts, FileState, parse_loadmodules
from provision.inventory import InventoryError, load
from provision.platforms import DEBIAN, REDHAT
from provision.resources import ApacheModuleDropin, ApacheModules, FileByFacts
from provision.roles import proxy
from provision.sites.model import HC_FAILS, HC_INTERVAL, HC_PASSES, HC_RETRY
from provision.verify import directives
from test_sites import without_drain

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"
SITES = ROOT / "inventory" / "sites.yml"
LAB = ROOT / "inventory" / "lab.yml"
OPTIONS = SimpleNamespace(mode=None)
APP_SITE = "site-app.example.test.inc"
API_SITE = "site-api.example.test.inc"

PASSIVE = proxy.ApacheForm()                                    # 2.4.6, or a release not in the table
EARLY = proxy.ApacheForm(upgrade=False, hcheck=True)            # 2.4.21 - 2.4.46: ws:// twins
EARLY_UPGRADE = proxy.ApacheForm(upgrade=True, hcheck=True)     # 2.4.47 - 2.4.54
CURRENT = proxy.ApacheForm(upgrade=True, hcheck=True, hcheck_reenables=True)    # 2.4.55+
RELEASES = [
    ({"ID": "centos", "VERSION_ID": "7"}, REDHAT, PASSIVE),            # httpd 2.4.6
    ({"ID": "rhel", "VERSION_ID": "7.9"}, REDHAT, PASSIVE),
    ({"ID": "rocky", "VERSION_ID": "8.9"}, REDHAT, EARLY),             # 2.4.37
    ({"ID": "ubuntu", "VERSION_ID": "20.04"}, DEBIAN, EARLY),          # 2.4.41
    ({"ID": "almalinux", "VERSION_ID": "9.4"}, REDHAT, EARLY_UPGRADE),  # 2.4.51
    ({"ID": "ubuntu", "VERSION_ID": "22.04"}, DEBIAN, EARLY_UPGRADE),  # 2.4.52
    ({"ID": "ubuntu", "VERSION_ID": "24.04"}, DEBIAN, CURRENT),        # 2.4.58
    ({"ID": "debian", "VERSION_ID": "11"}, DEBIAN, CURRENT),
    ({"ID": "debian", "VERSION_ID": "12"}, DEBIAN, CURRENT),           # the lab: 2.4.71
    ({"ID": "debian", "VERSION_ID": "13"}, DEBIAN, CURRENT),
    ({"ID": "debian", "VERSION_ID": "14"}, DEBIAN, PASSIVE),           # not in the table
]
DEBIAN12 = {"ID": "debian", "VERSION_ID": "12"}
HC = ["hcmethod=GET", "hcuri=/", f"hcinterval={HC_INTERVAL}", f"hcfails={HC_FAILS}", f"hcpasses={HC_PASSES}"]


def facts(platform, os_release, **kw):
    return Facts(os=os_release, platform=platform, **kw)


def inventory(tmp_path, edit=None, source=SITES):
    data = yaml.safe_load(source.read_text())
    data["all"]["vars"] = {}
    if edit:
        edit(data["all"]["children"])
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load(path)


def routes(form, inv=None, platform=DEBIAN, site=APP_SITE, options=OPTIONS):
    inv = inv or load(SITES)
    files = proxy.routes(inv.hosts["proxy"], platform, inv, options, form)
    return directives(next(text for path, text in files.items() if path.endswith(site)))


def balancer(found, name):
    start = found.index(["<Proxy", f"balancer://{name}>"])
    return found[start + 1:found.index(["</Proxy>"], start)]


def members(found, name):
    return [d for d in balancer(found, name) if d[0] == "BalancerMember"]


@pytest.mark.parametrize("os_release,platform,form", RELEASES, ids=lambda v: v.get("ID", "") + v.get(
    "VERSION_ID", "") if isinstance(v, dict) else None)
def test_form_comes_from_the_release_whatever_is_installed(os_release, platform, form):
    assert proxy.apache_form(facts(platform, os_release)) == form
    for installed in ("2.4.6-99.el7.centos.1", "2.4.71-1~deb12u1", "2.4.99"):
        packages = {platform.apache_packages[0]: installed}
        assert proxy.apache_form(facts(platform, os_release, packages=packages)) == form


def test_passive_form_has_no_health_check():
    """httpd 2.4.6 (CentOS 7) and unknown releases: retry=, failonstatus and failontimeout only."""
    found = routes(PASSIVE)
    text = " ".join(" ".join(d) for d in found)
    assert "hc" not in text.replace("hcheck", "") and "ProxyTimeout" not in text
    assert [m[:6] for m in members(found, "web")] == [
        ["BalancerMember", "http://10.123.0.11:8080", "route=web1-hello", "retry=30", "connectiontimeout=2", "timeout=5"],
        ["BalancerMember", "http://10.123.0.12:8081", "route=web2-howdy", "retry=30", "connectiontimeout=2", "timeout=5"]]
    assert balancer(found, "web")[-1] == ["ProxySet", "lbmethod=byrequests", "failonstatus=502,503", "failontimeout=On",
                                          "stickysession=ROUTEID"]


def test_current_form_checks_every_member_and_lets_the_check_bring_it_back():
    """2.4.55+: each member is asked for its health path every second; passive health stays, and a
    member it took out comes back when its check passes (retry is only a safety net)."""
    found = routes(CURRENT)
    for name in ("web", "api"):
        for m in members(found, name):
            assert m[-5:] == HC and f"retry={HC_RETRY}" in m, m
    assert balancer(found, "web")[-1] == ["ProxySet", "lbmethod=byrequests", "failonstatus=502,503", "failontimeout=On",
                                          "stickysession=ROUTEID"]
    assert not [d for d in found if d[0] == "ProxyTimeout"]      # the check honours each member's timeout
    assert HC_RETRY >= 3600


@pytest.mark.parametrize("form", [EARLY, EARLY_UPGRADE])
def test_early_forms_keep_retry_and_bound_the_check_by_proxytimeout(form):
    """2.4.21-2.4.54: only `retry` brings back a member passive health took out, so it stays; a
    check waits for ProxyTimeout (else the server's Timeout, 300 s on Debian), so the site sets it to
    its shortest checked pool's timeout, before any balancer."""
    found = routes(form)
    assert [m[3] for m in members(found, "web")] == ["retry=30", "retry=30"]
    assert [m[1] for m in members(found, "api")] == ["http://10.123.0.12:8082"] and "retry=5" in members(found, "api")[0]
    assert all(m[-5:] == HC for n in ("web", "api") for m in members(found, n))
    timeouts = [d for d in found if d[0] == "ProxyTimeout"]
    assert timeouts == [["ProxyTimeout", "5"]]                  # web: 5 s, api: 30 s
    assert found.index(timeouts[0]) < found.index(["<Proxy", "balancer://web>"])
    assert [d for d in routes(form, site=API_SITE) if d[0] == "ProxyTimeout"] == [["ProxyTimeout", "30"]]


def test_websocket_twin_is_checked_like_its_pool():
    """The twin balancer (web.ws) has the same apps as pool web: the same check, on the same health
    path. 2.4.47+: http:// members with upgrade=websocket; 2.4.21-2.4.46: ws:// members, whose check
    is the same plain HTTP request (mod_proxy_hcheck.c, hc_check_http at 2.4.21-2.4.46: only https,
    and from 2.4.43 wss, make it TLS; the scheme does not change the request)."""
    current = members(routes(CURRENT), "web.ws")
    assert [m[1] for m in current] == ["http://10.123.0.11:8080", "http://10.123.0.12:8081"]
    assert all(m[-6:] == [*HC, "upgrade=websocket"] and f"retry={HC_RETRY}" in m for m in current)
    early = members(routes(EARLY), "web.ws")
    assert [m[1] for m in early] == ["ws://10.123.0.11:8080", "ws://10.123.0.12:8081"]
    assert all(m[-5:] == HC and "retry=30" in m and "upgrade=websocket" not in m for m in early)
    # the twin keeps the member's drain variable and route: a drain and a sticky client hold in both
    assert [m[2] for m in early] == ["route=web1-hello", "route=web2-howdy"]
    assert balancer(routes(EARLY), "web.ws")[-1][-1] == "stickysession=ROUTEID"


def test_each_member_is_checked_on_its_own_apps_health_path():
    """Each app's `health` field (its validation belongs to the app's fields), else /."""
    inv = load(SITES)
    howdy, api = inv.hosts["web2"].apps
    howdy["health"], api["health"] = "/healthz", "/api/ping"
    found = routes(CURRENT, inv)
    assert [m[-4] for m in members(found, "web")] == ["hcuri=/", "hcuri=/healthz"]
    assert [m[-5] for m in members(found, "web.ws")] == ["hcuri=/", "hcuri=/healthz"]
    assert [m[-4] for m in members(found, "api")] == ["hcuri=/api/ping"]


def test_route_kinds_folder_and_exclude_are_untouched(tmp_path):
    def edit(children):
        children["proxies"]["vars"]["sites"][0]["routes"].append({"path": "/private", "exclude": True})
    found = routes(CURRENT, inventory(tmp_path, edit))
    passes = [d for d in found if d[0] in ("ProxyPass", "Alias")]
    assert passes[2:] == [["ProxyPass", "/private", "!"], ["ProxyPass", "/static", "!"],
                          ["Alias", "/static", "/var/www/provision-static"],
                          ["ProxyPass", "/api", "balancer://api/api"], ["ProxyPass", "/ws", "balancer://web.ws/ws"],
                          ["ProxyPass", "/", "balancer://web/"]]


def test_a_pool_can_keep_passive_health_only(tmp_path):
    def edit(children):
        children["proxies"]["vars"]["pools"]["web"]["active_health"] = False
    inv = inventory(tmp_path, edit)
    found = routes(CURRENT, inv)
    for name in ("web", "web.ws"):
        assert all("hcmethod=GET" not in m and "retry=30" in m for m in members(found, name))
    assert all(m[-5:] == HC for m in members(found, "api"))
    early = routes(EARLY, inv)
    assert [d for d in early if d[0] == "ProxyTimeout"] == [["ProxyTimeout", "30"]]    # api's only

    def off(children):
        children["proxies"]["vars"]["balancer_active_health"] = False
    found = routes(CURRENT, inventory(tmp_path, off))
    assert not [m for n in ("web", "web.ws", "api") for m in members(found, n) if "hcmethod=GET" in m]
    assert "proxy_hcheck" not in proxy.modules(inventory(tmp_path, off).hosts["proxy"], OPTIONS, DEBIAN, CURRENT)


def test_single_mode_has_no_health_check_only_balancers_do():
    """mod_proxy_hcheck checks balancer members; the short form's single mode is one plain worker."""
    inv = load(LAB)
    single = routes(CURRENT, inv, site="proxy-routes.inc", options=SimpleNamespace(mode="single"))
    assert not [d for d in single if any(w.startswith("hc") for w in d) or d[0] == "ProxyTimeout"]
    assert ["ProxyPass", "/", "http://10.123.0.11:8080/", "retry=5", "connectiontimeout=2", "timeout=30"] in single
    host = inv.hosts["proxy"]
    assert "proxy_hcheck" not in proxy.modules(host, SimpleNamespace(mode="single"), DEBIAN, CURRENT)
    assert "proxy_hcheck" in proxy.modules(host, SimpleNamespace(mode="balancer"), DEBIAN, CURRENT)


@pytest.mark.parametrize("platform", [DEBIAN, REDHAT], ids=["debian", "redhat"])
def test_short_form_balancer_is_the_fixture_plus_the_health_check(platform):
    """The demo's routes file (inventory/lab.yml) on Debian 12, deliberately: the pinned files of
    tests/fixtures/short-form/ plus the drain variables, the passive parameters and, on each
    member, the check of its app's `/` with retry raised to the safety net."""
    inv = load(LAB)
    options = SimpleNamespace(mode="balancer")
    text = proxy.routes(inv.hosts["proxy"], platform, inv, options, CURRENT)[platform.routes_path]
    check = " " + " ".join(HC)
    assert text.count(check) == 2 and text.count(f"retry={HC_RETRY} ") == 2
    plain = without_drain(text).replace(check, "").replace(f"retry={HC_RETRY} ", "retry=5 ")
    assert plain.replace(" failonstatus=502,503 failontimeout=On", "") == \
        (FIXTURES / "short-form" / f"{platform.family}-balancer-routes.inc").read_text()


def routes_step(platform, inv=None):
    inv = inv or load(SITES)
    steps = proxy.resources(inv.hosts["proxy"], platform, inv, OPTIONS)
    return next(s for s in steps if isinstance(s, FileByFacts) and s.path.endswith(APP_SITE))


@pytest.mark.parametrize("os_release,platform,form", RELEASES, ids=lambda v: v.get("ID", "") + v.get(
    "VERSION_ID", "") if isinstance(v, dict) else None)
def test_routes_file_is_chosen_by_the_release_and_a_second_deploy_changes_nothing(os_release, platform, form):
    step = routes_step(platform)
    first = step.plan(facts(platform, os_release))                  # Apache not installed yet
    assert first.new_content.decode() == proxy.routes(load(SITES).hosts["proxy"], platform, load(SITES), OPTIONS,
                                                      form)[step.path]
    assert (b"hcmethod=GET" in first.new_content) == form.hcheck
    written = FileState("file", "644", "root", "root", hashlib.sha256(first.new_content).hexdigest())
    installed = {platform.apache_packages[0]: "2.4.99"}
    again = step.plan(facts(platform, os_release, packages=installed, files={step.path: written}))
    assert not again.changed, again.reason
    assert b"hcmethod" not in step.content          # without facts (the CentOS 7 tree): passive only


def debian_modules(inv=None, disable=False):
    """The proxy's modules step that enables (prepare) or, with disable, the one that disables (switch)."""
    inv = inv or load(SITES)
    steps = proxy.prepare if not disable else proxy.switch
    return next(s for s in steps(inv.hosts["proxy"], DEBIAN, inv, OPTIONS) if isinstance(s, ApacheModules))


ENABLED = {"proxy", "proxy_http", "proxy_balancer", "lbmethod_byrequests", "headers"}


def test_debian_enables_proxy_hcheck_where_used_and_never_watchdog():
    """Debian builds mod_watchdog into apache2 (apache2ctl -M: watchdog_module (static)); a2enmod
    knows no watchdog module there."""
    static = (FIXTURES / "debian12" / "apache2ctl-M.txt").read_text()
    assert " watchdog_module (static)" in static and DEBIAN.builtin_modules == ("watchdog",)
    step = debian_modules()
    change = step.plan(facts(DEBIAN, DEBIAN12, apache_modules=ENABLED))
    assert change.script.splitlines()[0] == "a2enmod -q proxy_hcheck" and "watchdog" not in change.script
    assert f"touch {step.marks}/proxy_hcheck" in change.script      # provision's: disabled again when unused
    assert not step.plan(facts(DEBIAN, DEBIAN12, apache_modules=ENABLED | {"proxy_hcheck"})).changed
    unknown = step.plan(facts(DEBIAN, {"ID": "debian", "VERSION_ID": "14"}, apache_modules=ENABLED))
    assert "hcheck" not in unknown.script                           # passive form: no module


def test_debian_disables_the_hcheck_it_enabled_once_no_pool_uses_it(tmp_path):
    def off(children):
        children["proxies"]["vars"]["balancer_active_health"] = False
    step = debian_modules(inventory(tmp_path, off), disable=True)
    mark = {f"{step.marks}/proxy_hcheck": FileState("file", "644", "root", "root", "")}
    change = step.plan(facts(DEBIAN, DEBIAN12, apache_modules=ENABLED | {"proxy_hcheck"}, files=mark))
    assert change.script.splitlines()[0] == "a2dismod -q proxy_hcheck"
    # one enabled by someone else (no mark) is left alone
    assert not step.plan(facts(DEBIAN, DEBIAN12, apache_modules=ENABLED | {"proxy_hcheck"})).changed


def stock_loadmodules(*names) -> dict[str, str]:
    """`grep -H LoadModule` over the given fixture files, as the facts script reads conf.modules.d."""
    lines = []
    for name in names:
        path = FIXTURES / name
        lines += [f"/etc/httpd/conf.modules.d/{path.name}:{line}" for line in path.read_text().splitlines()]
    return parse_loadmodules(lines)


def redhat_dropin():
    inv = load(SITES)
    return next(s for s in proxy.resources(inv.hosts["proxy"], REDHAT, inv, OPTIONS) if isinstance(s, ApacheModuleDropin))


def test_rhel9_package_loads_hcheck_and_watchdog_so_no_dropin():
    loaded = stock_loadmodules("rocky9/conf.modules.d/00-base.conf", "rocky9/conf.modules.d/00-proxy.conf")
    assert loaded["proxy_hcheck_module"].endswith("/00-proxy.conf")
    assert loaded["watchdog_module"].endswith("/00-base.conf")
    change = redhat_dropin().plan(facts(REDHAT, {"ID": "rocky", "VERSION_ID": "9.3"}, packages={"httpd": "2.4.57"},
                                        load_modules=loaded))
    assert not change.changed and "conf.modules.d" in change.reason, change.reason
    # without the package's line, the drop-in loads it
    del loaded["proxy_hcheck_module"]
    change = redhat_dropin().plan(facts(REDHAT, {"ID": "rocky", "VERSION_ID": "9.3"}, packages={"httpd": "2.4.57"},
                                        load_modules=loaded))
    assert change.changed and change.new_content.decode().splitlines()[1:] == [
        "LoadModule proxy_hcheck_module modules/mod_proxy_hcheck.so"]


def test_centos7_dropin_never_loads_hcheck():
    """httpd 2.4.6 has no mod_proxy_hcheck.so: a LoadModule line for it would fail the configtest."""
    loaded = stock_loadmodules(*(f"centos7/conf.modules.d/{n}" for n in ("00-base.conf", "00-proxy.conf")))
    assert "proxy_hcheck_module" not in loaded
    change = redhat_dropin().plan(facts(REDHAT, {"ID": "centos", "VERSION_ID": "7"}, packages={"httpd": "2.4.6"},
                                        load_modules=loaded))
    assert "hcheck" not in change.script and "watchdog" not in change.script


def test_active_health_settings_must_be_true_or_false(tmp_path):
    def role_default(children):
        children["proxies"]["vars"]["balancer_active_health"] = "yes"
    with pytest.raises(InventoryError, match="field 'balancer_active_health' must be bool, got str 'yes'"):
        inventory(tmp_path, role_default)

    def pool(children):
        children["proxies"]["vars"]["pools"]["web"]["active_health"] = 1
    with pytest.raises(InventoryError, match="field 'pools.web.active_health' must be true or false"):
        inventory(tmp_path, pool)
