"""Each proxy host: Apache installed, running, enabled, on port 80, with the proxy modules, a
valid config, and the vhost directives its mode needs."""
from provision import verify


def test_apache_installed(proxy, remote, platform):
    name = platform.apache_packages[0]
    assert remote.package(name).is_installed, f"{proxy.name}: package {name} is not installed"


def test_apache_running(proxy, remote, platform):
    unit = platform.apache_service
    assert remote.service(unit).is_running, \
        f"{proxy.name}: service {unit} is not running ({remote.run('systemctl is-active %s', unit).stdout.strip()})"


def test_apache_enabled(proxy, remote, platform):
    unit = platform.apache_service
    assert remote.service(unit).is_enabled, f"{proxy.name}: service {unit} is not enabled"


def test_port_80_listening(proxy, remote):
    sockets = remote.socket.get_listening_sockets()
    assert verify.tcp_listeners(sockets, 80), \
        f"{proxy.name}: nothing listens on TCP port 80 (listening: {', '.join(s for s in sockets if s.startswith('tcp'))})"


def test_proxy_modules_loaded(proxy, remote, platform):
    ctl = platform.apache_ctl
    out = remote.run(f"{ctl} -M")
    missing = verify.missing_modules(verify.parse_apache_modules(out.stdout + out.stderr))
    if out.rc == 0:
        assert not missing, f"{proxy.name}: {ctl} -M lacks {', '.join(missing)}"
    else:
        # -M reads the whole config: when that is broken, say what the module config lacks
        listing = remote.run(platform.modules_listing).stdout
        missing = verify.missing_modules(verify.enabled_modules(platform, listing))
        why = (out.stdout + out.stderr).strip().replace("\n", " ")[-300:]
        assert False, f"{proxy.name}: {ctl} -M lacks " + (
            f"{', '.join(missing)} (not enabled; -M exit {out.rc}: {why})" if missing
            else f"every module: exit {out.rc}: {why}")


def test_configtest(proxy, remote, platform):
    out = remote.run(f"{platform.apache_ctl} configtest")
    assert out.rc == 0, f"{proxy.name}: {platform.apache_ctl} configtest failed: {(out.stdout + out.stderr).strip()[-500:]}"


def test_vhost_directives(proxy, remote, platform):
    if not proxy.model.short:
        vhost = remote.file(platform.vhost_path)
        assert vhost.is_file, f"{proxy.name}: vhost: missing {platform.vhost_path}"
        paths = [verify.proxy.routes_path(platform, proxy.model, s) for s in proxy.model.sites]
        routes = {p: remote.file(p).content_string if remote.file(p).is_file else None for p in paths}
        problems = verify.site_problems(vhost.content_string, routes, platform, proxy)
        assert not problems, f"{proxy.name}: sites: {'; '.join(problems)}"
        return
    vhost, routes = remote.file(platform.vhost_path), remote.file(platform.routes_path)
    missing = [p for p in (platform.vhost_path, platform.routes_path) if not remote.file(p).is_file]
    assert not missing, f"{proxy.name}: vhost: missing {', '.join(missing)}"
    problems = verify.vhost_problems(vhost.content_string, routes.content_string, platform.routes_path, proxy)
    if platform.vhost_enable_link and not remote.file(platform.vhost_enable_link).is_symlink:
        problems.append(f"{platform.vhost_enable_link} is not a link (site not enabled)")
    assert not problems, f"{proxy.name}: vhost ({proxy.mode} mode): {'; '.join(problems)}"
