"""Each backend app: its unit running and enabled, as its own user, listening on the host's
private address, answering its message (an app of your own: its health path, 2xx or 3xx)."""
from provision import verify


def test_app_running(app, remote):
    assert remote.service(app.unit).is_running, \
        f"{app.name}: service {app.unit} is not running ({remote.run('systemctl is-active %s', app.unit).stdout.strip()})"


def test_app_enabled(app, remote):
    assert remote.service(app.unit).is_enabled, f"{app.name}: service {app.unit} is not enabled"


def test_app_runs_as_its_user(app, remote):
    pid = remote.run("systemctl show -p MainPID --value %s", app.unit).stdout.strip()
    assert pid and pid != "0", f"{app.name}: service {app.unit} has no main process"
    user = remote.run("ps -o user= -p %s", pid).stdout.strip()
    assert user == app.user, f"{app.name}: service {app.unit} runs as {user or 'nobody'!r}, not {app.user!r}"


def test_app_listening(app, remote):
    m = app.member
    found = verify.tcp_listeners(remote.socket.get_listening_sockets(), m.port)
    assert m.address in found, \
        f"{app.name}: app {m.app}: nothing listens on {m.address}:{m.port} (port {m.port} on: {found or 'none'})"


def test_app_answers(app, remote):
    m = app.member
    if app.message is None:
        code = remote.run("curl -s -o /dev/null -w '%%{http_code}' --max-time 5 %s", f"{m.url()}{app.health}").stdout
        assert code[:1] in ("2", "3"), f"{app.name}: app {m.app}: GET {m.url()}{app.health} answered {code or 'nothing'}"
        return
    out = remote.run("curl -s --max-time 5 %s", f"{m.url()}/")
    assert out.stdout == app.message, \
        f"{app.name}: curl {m.url()}/ answered {out.stdout[:200]!r} (exit {out.rc}), expected {app.message!r}"
