"""The proxy: Apache httpd with mod_proxy serving the sites of provision.sites (the short form: one
vhost proxying to one backend app, or to a balancer:// cluster of every backend app). With tls on,
a :443 vhost includes the same routes. Changes are configtested, then gracefully reloaded."""
from __future__ import annotations

import datetime
import hashlib
import posixpath
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

from .. import tls as tlslib
from ..apply import HOST_LOCK, LOCK_DIR, Handler
from ..facts import FactRequest, apache_version
from .. import audit
from ..balancer import record as drain
from ..platforms import (FORWARDED_MODULES, HCHECK_MODULES, HCHECK_REENABLES_SINCE, HCHECK_SINCE, MD_MODULES,
                         PROXY_MODULES, REDIRECT_MODULES, TLS_MODULES, UPGRADE_PARAM_SINCE, WEBSOCKET_MODULES,
                         Platform)
from ..render import FILES, render
from ..sites import model as sites
from ..resources import (Absent, ApacheModuleDropin, ApacheModules, Change, Directory, File, FileByFacts,
                         FirewalldService, FolderIfMissing, Link, Packages, PathResource, Resource, SELinuxBoolean,
                         Service, StaleFiles)

GROUP = "proxies"
RELOAD = "reload-apache"
# Apache restarted, not reloaded: once, when mod_md is first loaded. After a graceful reload that
# loads it, mod_md never starts its renewal job (seen on the lab: Debian 12, httpd 2.4.71, mod_md
# 2.6.10: no job in 10 s after the reload, started 1.5 s after a restart).
RESTART = "restart-apache"
VALIDATE = "apache"
VAULT = "http://vault.centos.org"
CENTOS7_REPO = "/etc/yum.repos.d/CentOS-Base.repo"
DEFAULTS = {"proxy_mode": "balancer", "lbmethod": "byrequests", "balancer_retry": 5,
            "balancer_timeout": 30, "balancer_connectiontimeout": 2, "tls": "off", "tls_redirect": False,
            "tls_hsts": False, "health_path": "/health",
            "balancer_failonstatus": list(sites.FAILONSTATUS), "balancer_failontimeout": True,
            "balancer_active_health": True}
# Mozilla's "intermediate" list (guideline 5.7) without the DHE suites: see proxy-vhost.conf.j2.
CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
           "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")


# Modules only some configs need (the other lbmethods, wstunnel, hcheck, mod_md): disabled again once
# nothing uses them.
OPTIONAL_MODULES = tuple(f"lbmethod_{lb}" for lb in sites.LBMETHODS if lb != "byrequests") + \
    tuple(WEBSOCKET_MODULES) + tuple(HCHECK_MODULES) + tuple(MD_MODULES)

# tls: acme. The control route's HTTP-01 folder, served by every :80 vhost before any proxying.
ACME_WEBROOT = "/var/www/provision-acme"
ACME_CHALLENGES = f"{ACME_WEBROOT}/.well-known/acme-challenge"
# The mod_md route: mod_md runs MD_HOOK (MDMessageCmd) as the Apache user; on "renewed" it leaves a
# mark in MD_MARKS, and a systemd path unit runs the graceful reload that activates the certificate.
MD_HOOK_DIR = "/usr/local/lib/provision"
MD_HOOK = f"{MD_HOOK_DIR}/md-message"
MD_MARKS = "/var/lib/provision-md-renewed"   # its own: /var/lib/provision is root-only
MD_RELOAD = "provision-md-reload"
UNIT_DIR = "/etc/systemd/system"


class ProxyConfigError(Exception):
    pass


def setting(host, options, key):
    if key == "proxy_mode" and getattr(options, "mode", None):
        return options.mode
    return host.vars.get(key, DEFAULTS.get(key))


def model(host, inventory, options) -> sites.Proxy:
    """The sites, pools and routes this proxy serves (inventory None: the sites without members)."""
    keys = ("proxy_mode", "lbmethod", "balancer_retry", "balancer_timeout", "balancer_connectiontimeout",
            "balancer_failonstatus", "balancer_failontimeout", "balancer_active_health")
    defaults = {k: setting(host, options, k) for k in keys}
    defaults["server_name"] = host.vars.get("server_name", host.name)
    return sites.build(host, inventory, defaults)


def routes_path(platform: Platform, proxy: sites.Proxy, site: sites.Site) -> str:
    """The short form keeps the one routes file; each site of the long form has its own."""
    if proxy.short:
        return platform.routes_path
    return f"{posixpath.dirname(platform.routes_path)}/site-{site.server_name}.inc"


def client_url(host, address: str | None = None) -> str:
    """Where clients reach this proxy: its `public_url` (a proxy behind NAT or a load balancer),
    else http:// the address we reach it on (ansible_host, or ssh_config's HostName given as
    ``address``). Never its private_address, which may be loopback or an internal network.
    An invalid public_url raises ProxyConfigError naming the field."""
    url = host.vars.get("public_url")
    if url is None:
        address = address or host.address
        return f"http://[{address}]/" if ":" in address else f"http://{address}/"
    try:
        parts = urlsplit(url)       # 'https://[www.example.test/' raises: "Invalid IPv6 URL"
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = urlsplit(""), False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or parts.query \
            or parts.fragment or parts.username or parts.password or any(c.isspace() for c in url):
        raise ProxyConfigError(f"field 'public_url' must be an http:// or https:// URL such as "
                               f"https://www.example.com/, got {url!r}")
    return url if parts.path.endswith("/") else url + "/"


@dataclass(frozen=True)
class ApacheForm:
    """The directives the proxy's Apache understands, from the version its release ships. The
    default is what every 2.4 understands (httpd 2.4.6, or a release not in the version table)."""
    upgrade: bool = False           # WebSocket members say upgrade=websocket (2.4.47+)
    hcheck: bool = False            # mod_proxy_hcheck asks each member's health path (2.4.21+)
    hcheck_reenables: bool = False  # its checks honour the member's timeout and bring back a member
                                    # that passive health took out (2.4.55+)


def apache_form(facts) -> ApacheForm:
    """The same choice on every deploy: by the release, not by what is installed."""
    version = apache_version(facts)
    if version is None:
        return ApacheForm()
    return ApacheForm(version >= UPGRADE_PARAM_SINCE, version >= HCHECK_SINCE, version >= HCHECK_REENABLES_SINCE)


def acme_route(host, platform: Platform | None) -> str | None:
    """tls: acme's route on this platform: "mod_md" (Apache gets and renews its certificate itself,
    httpd 2.4.30+ with mod_md) or "control" (this machine orders it: CentOS 7, or acme_client:
    control). None with another tls mode."""
    if host.vars.get("tls") != "acme":
        return None
    if host.vars.get("acme_client", "auto") == "control" or platform is None or platform.md_packages is None:
        return "control"
    return "mod_md"


def serves_tls(host, platform: Platform | None, options) -> bool:
    """Whether the proxy has a :443 vhost: tls on, except the control route before its first certificate."""
    if setting(host, options, "tls") == "off":
        return False
    return acme_route(host, platform) != "control" or material(host, options) is not None


def modules(host, options, platform: Platform | None = None, form: ApacheForm = ApacheForm()) -> dict:
    """The proxy modules, plus each pool's lbmethod module, mod_headers, proxy_wstunnel for
    WebSocket routes before httpd 2.4.47, proxy_hcheck (and watchdog where it is not built in) for
    balancers with active health, plus the TLS ones with tls on (on RedHat, ssl_module comes with
    the mod_ssl package, not our drop-in, and md_module with the mod_md package)."""
    found = model(host, None, options)
    extra = {f"lbmethod_{lb}": (f"lbmethod_{lb}_module", f"modules/mod_lbmethod_{lb}.so")
             for lb in sorted({p.lbmethod for p in found.pools})}
    if found.websocket and not form.upgrade:
        extra.update(WEBSOCKET_MODULES)
    if form.hcheck and any(p.balancer and p.active_health for p in found.pools):
        extra.update({k: v for k, v in HCHECK_MODULES.items() if platform is None or k not in platform.builtin_modules})
    if serves_tls(host, platform, options):
        extra.update(TLS_MODULES)
        if platform is not None and platform.tls_packages:
            extra.pop("ssl")
        if setting(host, options, "tls_redirect"):
            extra.update(REDIRECT_MODULES)
        if acme_route(host, platform) == "mod_md" and not platform.md_packages:
            extra.update(MD_MODULES)
    return {**PROXY_MODULES, **extra, **FORWARDED_MODULES}


def tls_paths(platform: Platform) -> tuple[str, str]:
    return f"{platform.tls_dir}/proxy.crt", f"{platform.tls_dir}/proxy.key"


def material(host, options) -> tlslib.Material | None:
    """The host's certificate and key, made by tls.prepare before planning (None with tls off, and
    with tls: acme before the control route's first certificate)."""
    if setting(host, options, "tls") == "off":
        return None
    found = (getattr(options, "tls", None) or {}).get(host.name)
    if found is None and setting(host, options, "tls") != "acme":
        raise ProxyConfigError(f"tls: {setting(host, options, 'tls')}: no certificate prepared for this host "
                               "(provision.tls.prepare runs before planning)")
    return found


def routes(host, platform: Platform, inventory, options, form: ApacheForm = ApacheForm()) -> dict[str, str]:
    """Each site's routes file, in the form the proxy's Apache understands: path -> text."""
    found = model(host, inventory, options)
    for pool in found.pools:
        if not pool.members:
            raise ProxyConfigError(f"{inventory.path}: group 'backends' has no apps to proxy to" if found.short
                                   else f"{inventory.path}: pool {pool.name!r} has no apps to proxy to")
    files = {}
    for site in found.sites:
        pools = found.pools_of(site)
        websocket_pools = [found.pool(n) for n in dict.fromkeys(r.pool for r in site.routes if r.websocket)]
        # Before 2.4.55 a check's socket waits for ProxyTimeout, else the server's Timeout (300 s on
        # Debian): the check worker copies no timeout= (mod_proxy_hcheck.c hc_get_hcworker, and
        # proxy_util.c ap_proxy_connect_backend, at 2.4.41).
        checked = [p for p in pools if p.balancer and p.active_health] if form.hcheck else []
        files[routes_path(platform, found, site)] = render(
            "proxy-routes.inc.j2", short=found.short, site=site, pools=pools, routes=site.routes,
            websocket_pools=websocket_pools, form=form, hc=sites,
            check_timeout=min(p.timeout for p in checked) if checked and not form.hcheck_reenables else None,
            pools_by_name={p.name: p for p in pools}, sticky=any(p.sticky for p in pools),
            extra=host.vars.get("proxy_extra_directives", []),
            drained_include=drain.include_pattern(platform), drain_variable=drain.status_variable)
    return files


def directory_ca_path(platform: Platform) -> str:
    """mod_md's MDCACertificateFile: the CA of a private ACME directory (acme_directory_ca). Not in
    tls_dir (0700): mod_md reads it from a child process, as the Apache user."""
    return f"{posixpath.dirname(platform.routes_path)}/acme-directory-ca.pem"


def md_settings(host, platform: Platform) -> dict:
    """What the vhost file tells mod_md (the mod_md route only)."""
    return {"directory": tlslib.acme_directory(host), "contact": platform.md_contact,
            "email": host.vars["acme_email"], "names": tlslib.acme_names(host),
            "renew_window": host.vars.get("acme_renew_window") or tlslib.ACME_RENEW_WINDOW,
            "ca_file": directory_ca_path(platform) if host.vars.get("acme_directory_ca") else None,
            "hook": MD_HOOK}


def vhost(host, platform: Platform, options) -> str:
    tls = material(host, options)
    route = acme_route(host, platform)
    cert, key = tls_paths(platform)
    found = model(host, None, options)
    listed = [{"server_name": s.server_name, "aliases": s.aliases, "routes_path": routes_path(platform, found, s),
               "log_prefix": f"{platform.log_dir}/provision-{s.server_name}"} for s in found.sites]
    return render("proxy-vhost.conf.j2", sites=listed, global_name=host.vars.get("server_name", host.name),
                  tls=serves_tls(host, platform, options), cert_path=cert, key_path=key,
                  chain_directive=bool(tls and tls.chained and platform.tls_chain_directive),
                  ciphers=CIPHERS, hsts=setting(host, options, "tls_hsts"),
                  redirect=setting(host, options, "tls_redirect"), health_path=setting(host, options, "health_path"),
                  acme=route is not None, md=md_settings(host, platform) if route == "mod_md" else None,
                  challenges=ACME_CHALLENGES if route == "control" else None)


@dataclass
class TlsModuleOff(Resource):
    """Debian, tls off: a2dismod ssl if our certificate (or the mod_md route's hook) is still there
    (we enabled it), so that ports.conf's "<IfModule ssl_module> Listen 443" goes away with our
    :443 vhost."""
    cert: str
    notify: tuple[str, ...] = ()
    hook: str | None = None

    def __post_init__(self):
        self.label = "apache module ssl off"

    def request(self):
        return FactRequest(paths={self.cert} | ({self.hook} if self.hook else set()))

    def _plan(self, facts):
        if "ssl" not in facts.apache_modules:
            return Change(self.label, "not enabled")
        if all(facts.file(p).kind == "absent" for p in (self.cert, self.hook) if p):
            return Change(self.label, "enabled, but not by provision: left alone")
        return self._change("tls is off", "a2dismod -q ssl")


@dataclass
class MdHookOff(Resource):
    """No mod_md renewal hook where the mod_md route is not taken (any more): the path unit
    stopped and disabled, its units, the hook and its marks removed."""
    paths: tuple[str, ...]
    unit: str

    def __post_init__(self):
        self.label = "no mod_md renewal hook"

    def request(self):
        return FactRequest(paths=set(self.paths))

    def _plan(self, facts):
        there = [p for p in self.paths if facts.file(p).kind != "absent"]
        if not there:
            return Change(self.label, "none")
        return self._change(f"removed {', '.join(there)}", f"systemctl disable --now {self.unit} 2>/dev/null || true\n"
                            f"rm -rf {' '.join(shlex.quote(p) for p in there)}\nsystemctl daemon-reload")


@dataclass
class TlsConfOff(PathResource):
    """RedHat, tls off: our ssl.conf says "Listen 443 https"; with no SSL vhost left httpd would
    refuse to start, so it becomes a comment. A file that is not ours is left alone."""
    path: str
    ours: bytes
    replacement: bytes
    notify: tuple[str, ...] = ()
    validate: str | None = None

    def __post_init__(self):
        self.label = f"tls off {self.path}"

    def _plan(self, facts):
        if facts.file(self.path).sha256 != hashlib.sha256(self.ours).hexdigest():
            return Change(self.label, "not provision's TLS settings: left alone")
        change = File(self.path, self.replacement, notify=self.notify, validate=self.validate).plan(facts)
        change.label = self.label
        return change


def tls_material(host, platform: Platform, options, inventory=None) -> list:
    """What TLS needs that the running config does not read: with tls on, the folder and the
    certificate and key (or, on the mod_md route, the directory CA and mod_md's renewal hook); the
    control route's HTTP-01 folder."""
    route = acme_route(host, platform)
    challenges = [Directory(ACME_CHALLENGES)] if route == "control" else []
    if not serves_tls(host, platform, options):
        return challenges
    steps = [Directory(platform.tls_dir, mode="700")]
    if route == "mod_md":
        if host.vars.get("acme_directory_ca"):
            steps.append(File(directory_ca_path(platform), tlslib.read_directory_ca(host, inventory),
                              notify=(RELOAD,), validate=VALIDATE, kind_label="acme directory CA"))
        steps += md_hook(platform)
    else:
        steps += certificate_files(platform, material(host, options))
    return steps + challenges


def tls_config(host, platform: Platform, options) -> list:
    """What changes TLS in the running config: the global SSL settings with tls on (and, on the
    mod_md route, our own key and certificate gone, and mod_md's certificate reported); with tls
    off, everything TLS removed. The running config may use them until the switch."""
    reload_, check = (RELOAD,), VALIDATE
    cert, key = tls_paths(platform)
    route = acme_route(host, platform)
    ours = (FILES / "ssl-redhat.conf").read_bytes()
    if not serves_tls(host, platform, options):
        steps = [Absent(cert, notify=reload_, validate=check), Absent(key, notify=reload_, validate=check)]
        if platform.module_enable == "a2enmod":
            steps.insert(0, TlsModuleOff(cert, notify=reload_, hook=MD_HOOK))
        if platform.tls_conf:
            steps.append(TlsConfOff(platform.tls_conf, ours, (FILES / "ssl-redhat-off.conf").read_bytes(),
                                    notify=reload_, validate=check))
        return steps
    steps = [Absent(key, notify=reload_, validate=check), Absent(cert, notify=reload_, validate=check)] \
        if route == "mod_md" else []
    if platform.tls_conf:
        steps.append(File(platform.tls_conf, ours, notify=reload_, validate=check))
    if route == "mod_md":
        steps.append(MdCertificate(host, md_paths(host, platform)[0]))
    return steps


def tls_resources(host, platform: Platform, options, inventory=None) -> list:
    """Certificate, key and global SSL settings with tls on; their removal with tls off. tls: acme
    adds the control route's HTTP-01 folder, or the mod_md route's renewal hook (and no key or
    certificate of ours: mod_md keeps them in its store). The role prepares the first part
    (tls_material) and switches the second (tls_config)."""
    return tls_material(host, platform, options, inventory) + tls_config(host, platform, options)


def certificate_files(platform: Platform, tls: tlslib.Material) -> list:
    """The proxy's key (0600, secret: never shown) and certificate, each change configtested, then reloaded."""
    cert, key = tls_paths(platform)
    return [File(key, tls.key, mode="600", notify=(RELOAD,), validate=VALIDATE, kind_label="tls key", secret=True),
            File(cert, tls.cert, notify=(RELOAD,), validate=VALIDATE, kind_label="tls certificate")]


class CertificateOnly:
    """The proxy role narrowed to its certificate and key: what `invoke tls.renew` converges."""
    GROUP = GROUP

    @staticmethod
    def resources(host, platform: Platform, inventory, options) -> list:
        return [Directory(platform.tls_dir, mode="700"), *certificate_files(platform, material(host, options))]

    @staticmethod
    def handlers(host, platform: Platform) -> dict[str, Handler]:
        return handlers(host, platform)

    @staticmethod
    def validators_for(platform: Platform) -> dict[str, str]:
        return validators_for(platform)


def md_paths(host, platform: Platform) -> tuple[str, str]:
    """mod_md's certificate (chain) of the host's managed domain, named after its first name, and the
    record of its last renewal job (mod_md documentation: "the file job.json in your staging")."""
    name = tlslib.acme_names(host)[0]
    return f"{platform.md_store}/domains/{name}/pubcert.pem", f"{platform.md_store}/staging/{name}/job.json"


@dataclass
class MdCertificate(Resource):
    """The mod_md route's certificate, as mod_md serves it: reported, never changed (mod_md orders
    and renews it; provision.certificates waits for it after a converge)."""
    host: object
    path: str
    now: datetime.datetime | None = None       # None: the clock at planning

    def __post_init__(self):
        self.label = f"acme certificate {tlslib.acme_names(self.host)[0]} (mod_md)"

    def request(self):
        return FactRequest(certificates={self.path})

    def _plan(self, facts):
        pem = facts.certificates.get(self.path)
        now = self.now or datetime.datetime.now(datetime.timezone.utc)
        why = tlslib.served_problem(self.host, pem, now)
        if why is None:
            return Change(self.label, f"mod_md serves one for every name, {tlslib.days_left(pem, now)} days left")
        return Change(self.label, f"{why}: mod_md orders one after Apache's reload")


def md_hook_off() -> MdHookOff:
    return MdHookOff((MD_HOOK, MD_MARKS, *(f"{UNIT_DIR}/{MD_RELOAD}.{kind}" for kind in ("path", "service"))),
                     f"{MD_RELOAD}.path")


def md_hook(platform: Platform) -> list:
    """mod_md's MDMessageCmd, and the path unit that reloads Apache (as root) when it marks a renewal."""
    units = {"path": render("md-reload.path.j2", marks=MD_MARKS, service=platform.apache_service, unit=MD_RELOAD),
             "service": render("md-reload.service.j2", marks=MD_MARKS, service=platform.apache_service,
                               ctl=platform.apache_ctl, lock=HOST_LOCK, lock_dir=LOCK_DIR, unit=MD_RELOAD)}
    return [
        Directory(MD_HOOK_DIR),
        File(MD_HOOK, render("md-message.sh.j2", marks=MD_MARKS, user=platform.apache_user), mode="755"),
        Directory(MD_MARKS, mode="700", owner=platform.apache_user, group=platform.apache_user),
        *[File(f"{UNIT_DIR}/{MD_RELOAD}.{kind}", text, after="systemctl daemon-reload", kind_label="unit")
          for kind, text in units.items()],
        Service(f"{MD_RELOAD}.path"),
    ]


def _centos7_only(facts):
    # Only CentOS 7 is EOL (2024-06-30) with dead mirrors: mirrorlist.centos.org no longer answers.
    if facts.os.get("ID") == "centos" and facts.os.get("VERSION_ID", "").split(".")[0] == "7":
        return None
    return "not CentOS 7"


def _modules(host, platform: Platform, options, enable: bool, disable: bool) -> ApacheModules:
    # proxy_wstunnel and proxy_hcheck join at plan time, when the Apache version needs them
    return ApacheModules(tuple(modules(host, options, platform, ApacheForm(upgrade=True))), notify=(RELOAD,),
                         optional=OPTIONAL_MODULES, marks=f"{posixpath.dirname(platform.routes_path)}/modules",
                         choose=lambda facts: tuple(modules(host, options, platform, apache_form(facts))),
                         restart_for=tuple(MD_MODULES), restart=RESTART, enable=enable, disable=disable)


def prepare(host, platform: Platform, inventory, options) -> list:
    """What gets the proxy ready without changing what it serves: repos, packages, the modules it
    will need (Debian), SELinux and firewalld, folders, the TLS material, the audit trail's folder
    and logrotate file. Safe to run while the backends are still converging."""
    reload_ = (RELOAD,)
    steps = []
    if platform.family == "redhat" and host.vars.get("vault_repos", True):
        steps.append(File(CENTOS7_REPO, render("centos7-vault.repo.j2", vault=VAULT,
                                                repos=["base", "updates", "extras"]),
                          after="yum clean all -q", when=_centos7_only, kind_label="yum repo"))
    steps.append(Packages(platform, platform.apache_packages))
    tls_on = serves_tls(host, platform, options)
    if tls_on and platform.tls_packages:
        steps.append(Packages(platform, platform.tls_packages))
    if tls_on and acme_route(host, platform) == "mod_md" and platform.md_packages:
        steps.append(Packages(platform, platform.md_packages, notify=(RESTART,), satisfies=reload_))
    if platform.module_enable == "a2enmod":
        steps.append(_modules(host, platform, options, enable=True, disable=False))
    if platform.family == "redhat":
        if host.vars.get("selinux_network_connect", True):
            steps.append(SELinuxBoolean("httpd_can_network_connect", True))
        if host.vars.get("firewalld_open_http", True):
            steps.append(FirewalldService("http"))
            if tls_on:
                steps.append(FirewalldService("https"))
    found = model(host, inventory, options)
    steps += [Directory(posixpath.dirname(platform.routes_path)),
              *[FolderIfMissing(folder) for folder in dict.fromkeys(r.folder for s in found.sites for r in s.routes
                                                                  if r.folder)],
              *tls_material(host, platform, options, inventory)]
    return steps + audit.resources()


def switch(host, platform: Platform, inventory, options) -> list:
    """What points the proxy at the backends: the modules no longer needed off, the RedHat modules
    drop-in, the global SSL settings, the routes files and the vhost, the package defaults off,
    Apache running; then the one reload (handler). Runs once the backends it routes to answer."""
    reload_, check = (RELOAD,), VALIDATE
    steps = []
    if platform.module_enable == "a2enmod":
        steps.append(_modules(host, platform, options, enable=False, disable=True))
    else:
        # one file both loads and unloads: it changes what the running config can use
        steps.append(ApacheModuleDropin(platform.module_dropin, modules(host, options, platform),
                                        platform.apache_packages[0], notify=reload_, validate=check,
                                        choose=lambda facts: modules(host, options, platform, apache_form(facts))))
    steps += [
        *tls_config(host, platform, options),
        *([] if acme_route(host, platform) == "mod_md" else [md_hook_off()]),
        *site_resources(host, platform, inventory, options),
        File(platform.vhost_path, vhost(host, platform, options), notify=reload_, validate=check),
    ]
    if platform.vhost_enable_link:
        steps.append(Link(platform.vhost_enable_link, f"../sites-available/{posixpath.basename(platform.vhost_path)}",
                          notify=reload_, validate=check))
    # A site taken out of the inventory: its routes file goes, once the vhost no longer includes it.
    found = model(host, None, options)
    steps.append(StaleFiles(f"{posixpath.dirname(platform.routes_path)}/site-*.inc", notify=reload_, validate=check,
                            keep=() if found.short else tuple(routes_path(platform, found, s) for s in found.sites)))
    if not found.short:
        steps.append(Absent(platform.routes_path, notify=reload_, validate=check))
    for path, how in platform.disabled_defaults:
        if how == "absent":
            steps.append(Absent(path, notify=reload_, validate=check, installed_by=platform.apache_packages[0]))
        else:
            steps.append(File(path, (FILES / "welcome-disabled.conf").read_text(), notify=reload_,
                              validate=check))
    steps.append(Service(platform.apache_service))
    return steps


def resources(host, platform: Platform, inventory, options) -> list:
    return prepare(host, platform, inventory, options) + switch(host, platform, inventory, options)


def site_resources(host, platform: Platform, inventory, options) -> list:
    """The routes files: the short form's one file, or one per site (the vhost, written after
    them, stops including the short form's, then it goes). The folders routes serve from are
    prepared before (prepare)."""
    reload_, check = (RELOAD,), VALIDATE
    # The WebSocket and health-check directives depend on the Apache version the release ships (the
    # os-release fact): the plan picks the form (without facts, the one every 2.4 understands).
    by_form = {ApacheForm(): routes(host, platform, inventory, options)}

    def chosen(facts, path):
        form = apache_form(facts)
        if form not in by_form:
            by_form[form] = routes(host, platform, inventory, options, form)
        return by_form[form][path]
    found = model(host, inventory, options)
    members = [m.url() for p in found.pools if p.balancer for m in p.members]
    upgrade = drain.upgrade_script(posixpath.dirname(platform.routes_path), members)
    return [FileByFacts(path, text, notify=reload_, validate=check, after=upgrade,
                        choose=lambda facts, path=path: chosen(facts, path))
            for path, text in by_form[ApacheForm()].items()]


def upstreams(host, inventory, options) -> list:
    """The backend apps this proxy routes to (sites.Member): every member of its pools, or the
    one member of the short form's single mode."""
    found = model(host, inventory, options)
    return list(dict.fromkeys(m for p in found.pools for m in (p.members if p.balancer else p.members[:1])))


def handlers(host, platform: Platform) -> dict[str, Handler]:
    found = {RELOAD: Handler(RELOAD, f"reload {platform.apache_service}",
                             f"{platform.apache_ctl} configtest\nsystemctl reload {platform.apache_service}")}
    if host is not None and acme_route(host, platform) == "mod_md":
        found[RESTART] = Handler(RESTART, f"restart {platform.apache_service}",
                                 f"{platform.apache_ctl} configtest\nsystemctl restart {platform.apache_service}")
    return found


def validators_for(platform: Platform) -> dict[str, str]:
    return {VALIDATE: f"{platform.apache_ctl} configtest"}
