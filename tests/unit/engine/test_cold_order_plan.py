"""The cold deploy's order, planned from facts and with every apply recorded instead of run: a
proxy prepares while its backends converge, switches only once they have, and never when one of
them failed; a host with nothing to change costs no apply."""
import io
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from provision import deploy, engine, facts as factlib
from provision.engine import Board, Connections, StepResult
from provision.inventory import load
from provision.report import Reporter
from provision.roles import PHASES
from provision.transport import Result
from provision.wheels import Wheelhouse, installer_for, pins_for

ROOT = Path(__file__).resolve().parents[3]
COLD = "@@@ os-release\nID=debian\nVERSION_ID=12\n@@@ arch\nx86_64\n@@@ python\nPython 3.11.2\n"


def fake_wheels(facts):
    pins = pins_for(facts.python)
    installer = Path(f"/cache/{installer_for(facts.python).replace('==', '-')}-py3-none-any.whl")
    return Wheelhouse("test", pins, tuple(Path(f"/cache/{p}.whl") for p in pins) + (installer,), installer,
                      ("0" * 64,) * (len(pins) + 1))


@dataclass
class Applies:
    """Every apply the engine would run: (host, what, start, end), in the order they started."""
    fail: set = field(default_factory=set)
    hold_backends: threading.Event | None = None
    log: list = field(default_factory=list)
    checks: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, role, host, inventory, options, conn, reporter, result, facts, resources, changes,
                 handlers, diffs, check=None, then=""):
        start = time.monotonic()
        what = "prepare" if then else ("switch" if check is not None else "all")
        if role is PHASES[0][1] and self.hold_backends is not None:
            assert self.hold_backends.wait(5), "the proxy did not prepare while the backends converged"
        time.sleep(0.01)
        if check is not None:
            self.checks[host.name] = check
        if host.name in self.fail:
            result.error = "apply script exited 1: boom"
            out = None
        else:
            result.steps += [StepResult(c.label, "changed", c.reason) for c in changes if c.changed]
            result.steps += [StepResult(h.label, "changed", "handler") for h in handlers]
            out = Result(0, f"{engine.FACTS_AFTER}\n{COLD}" if then else "", "")
        with self.lock:
            self.log.append((host.name, what, start, time.monotonic()))
        return out

    def of(self, host):
        return [entry[1] for entry in self.log if entry[0] == host]

    def times(self, host, what):
        return next((s, e) for h, w, s, e in self.log if h == host and w == what)


@pytest.fixture
def lab():
    return load(ROOT / "inventory/lab.yml")


def run(inv, applies, monkeypatch, check=False, backend_role=None, known=None):
    monkeypatch.setattr(engine, "run_apply", applies)

    def gather(conn, request, reporter=None, audit_line=""):     # facts read again once a role changed the host
        with applies.lock:
            applies.log.append((conn.host.name, "facts", time.monotonic(), time.monotonic()))
        return factlib.parse(COLD)
    monkeypatch.setattr(engine, "gather", gather)
    options = engine.Options(check=check, wheels=fake_wheels)
    phases = deploy.plan_phases(inv, None)
    if backend_role is not None:
        phases = [(backend_role, phases[0][1]), phases[1]]
    facts = {name: factlib.parse(COLD) for name in inv.hosts} if known is None else known
    out = io.StringIO()
    results = deploy._pipeline(inv, phases, phases[0][1], phases[1][1], options, Connections(options),
                               Reporter(stream=out), facts, Board())
    return results, out.getvalue()


def test_the_proxy_prepares_while_the_backends_converge_and_switches_after_them(lab, monkeypatch):
    applies = Applies(hold_backends=threading.Event())
    original = applies.__call__

    def record(*args, **kwargs):
        out = original(*args, **kwargs)
        if args[1].name == "proxy" and kwargs.get("then"):
            applies.hold_backends.set()     # the backends may finish only once the proxy prepared
        return out
    (backends, proxies), _ = run(lab, record, monkeypatch)
    assert applies.of("proxy") == ["prepare", "switch"]
    assert applies.of("web1") == applies.of("web2") == ["all"]
    prepared, switched = applies.times("proxy", "prepare"), applies.times("proxy", "switch")
    converged = max(applies.times(h, "all")[1] for h in ("web1", "web2"))
    assert prepared[1] <= converged < switched[0]
    label, script = applies.checks["proxy"]
    assert label == "backends answer (2 apps)"
    assert "http://10.123.0.11:8080/" in script and "http://10.123.0.12:8081/" in script
    steps = [s.label for s in proxies["proxy"].steps]
    assert steps.index("packages apache2 curl") < steps.index("file /etc/apache2/provision/proxy-routes.inc")
    assert all(not r.failed and r.counts()["skipped"] == 0 for r in [*backends.values(), *proxies.values()])


def test_a_failed_backend_leaves_the_proxy_prepared_and_not_switched(lab, monkeypatch):
    applies = Applies(fail={"web2"})
    (backends, proxies), out = run(lab, applies, monkeypatch)
    assert backends["web2"].failed and not backends["web1"].failed
    assert applies.of("proxy") == ["prepare"]
    proxy = proxies["proxy"]
    skipped = [s for s in proxy.steps if s.status == "skipped"]
    assert {s.label for s in skipped} >= {"file /etc/apache2/provision/proxy-routes.inc",
                                          "file /etc/apache2/sites-available/provision-proxy.conf",
                                          "reload apache2"}
    assert {s.reason for s in skipped} == {"not switched: web2 failed"}
    assert not proxy.failed and proxy.counts()["skipped"] == len(skipped)
    assert "proxy | skipped | file /etc/apache2/provision/proxy-routes.inc: not switched: web2 failed" in out


def test_backends_with_nothing_to_change_let_the_proxy_apply_once_with_the_answer_check(lab, monkeypatch):
    nothing = SimpleNamespace(GROUP="backends", prepare=lambda *a: [], switch=lambda *a: [],
                              resources=lambda *a: [], handlers=lambda *a: {}, validators_for=lambda p: {})
    applies = Applies()
    (backends, proxies), _ = run(lab, applies, monkeypatch, backend_role=nothing)
    assert applies.of("proxy") == ["switch"] and applies.of("web1") == applies.of("web2") == []
    assert applies.checks["proxy"][0] == "backends answer (2 apps)"


def test_check_mode_applies_nothing_and_waits_for_no_one(lab, monkeypatch):
    applies = Applies(fail={"web1", "web2"})
    (backends, proxies), _ = run(lab, applies, monkeypatch, check=True)
    assert applies.log == []
    assert all(s.status in ("ok", "changed") for s in proxies["proxy"].steps)


def test_a_proxy_only_routed_to_converged_backends_in_single_mode(lab, monkeypatch):
    lab.hosts["proxy"].vars["proxy_mode"] = "single"
    applies = Applies(fail={"web2"})        # web2 is not routed to in single mode: web1 only
    (_, proxies), _ = run(lab, applies, monkeypatch)
    assert applies.of("proxy") == ["prepare", "switch"]
    assert "10.123.0.12" not in applies.checks["proxy"][1]
    assert proxies["proxy"].counts()["skipped"] == 0


def test_the_tutorial_host_runs_its_backend_role_then_its_proxy_role(monkeypatch):
    inv = load(ROOT / "inventory/tutorial.yml")
    applies = Applies()
    (backends, proxies), _ = run(inv, applies, monkeypatch)
    [host] = inv.hosts
    # the backend role, whole; then the proxy role on the same host, from facts read again
    assert applies.of(host) == ["all", "facts", "switch"]
    assert not backends[host].failed and not proxies[host].failed


def test_a_proxy_with_only_switch_changes_waits_then_applies_once_and_counts_its_prepared_steps(lab, monkeypatch):
    from provision.facts import FileState
    from provision.resources import Directory
    ready = SimpleNamespace(GROUP="proxies", prepare=lambda *a: [Directory("/prepared")],
                            switch=lambda *a: [Directory("/switched")],
                            resources=lambda *a: [Directory("/prepared"), Directory("/switched")],
                            handlers=lambda *a: {}, validators_for=lambda p: {})
    facts = {name: factlib.parse(COLD) for name in lab.hosts}
    facts["proxy"].files["/prepared"] = FileState("directory", "755", "root", "root")
    applies = Applies(hold_backends=None)
    monkeypatch.setattr(engine, "run_apply", applies)
    options = engine.Options(wheels=fake_wheels)
    phases = deploy.plan_phases(lab, None)
    phases = [phases[0], (ready, phases[1][1])]
    _, proxies = deploy._pipeline(lab, phases, phases[0][1], phases[1][1], options, Connections(options),
                                  Reporter(stream=io.StringIO()), facts, Board())
    assert applies.of("proxy") == ["switch"]
    assert applies.times("proxy", "switch")[0] >= max(applies.times(h, "all")[1] for h in ("web1", "web2"))
    assert [(s.label, s.status) for s in proxies["proxy"].steps] == [("directory /prepared", "ok"),
                                                                    ("directory /switched", "changed")]
