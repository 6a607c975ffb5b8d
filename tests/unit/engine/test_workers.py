"""Worker processes: hosts dealt out, --forks shared, the board's events and the reporter's calls
relayed between real forked processes, results merged into one run's order; a dead worker's
hosts fail, saying why."""
import io
import os

from provision import deploy, workers
from provision.deploy import Converged, workers_wanted
from provision.engine import HostResult, StepResult
from provision.report import Reporter


def test_how_many_workers():
    assert workers_wanted(0, 3, 20, 2) == 1          # too few hosts to pay for a process
    assert workers_wanted(0, 23, 20, 2) == 2
    assert workers_wanted(0, 100, 20, 8) == 8
    assert workers_wanted(0, 100, 3, 8) == 3         # never more than the forks
    assert workers_wanted(4, 3, 20, 2) == 3          # nor than the hosts
    assert workers_wanted(1, 100, 20, 2) == 1
    assert workers_wanted(0, 100, 20, 2, serial=True) == 1


def test_hosts_dealt_out_and_forks_shared():
    assert workers.shares(["a", "b", "c", "d", "e"], 2) == [{"a", "c", "e"}, {"b", "d"}]
    assert workers.split_forks(20, 3) == [7, 7, 6] and sum(workers.split_forks(5, 2)) == 5


def converge(owned, forks, board, forward):
    """A worker's run without SSH: b1 and b2 are backends; p waits for both (in any worker)."""
    results = {}
    for name in sorted(owned):
        r = HostResult(name)
        forward.track(r)
        if name.startswith("p"):
            failures = board.wait_done(["b1", "b2"])
            step = StepResult("switch", "skipped" if failures else "changed", f"pid {os.getpid()}")
        else:
            step = StepResult("unit", "failed" if name == "b2" else "changed", f"pid {os.getpid()}")
        r.steps.append(step)
        forward.step(name, step)
        if not name.startswith("p"):
            board.done(name, "failed" if name == "b2" else None)
        results[name] = r
    return Converged([{n: r for n, r in results.items() if n.startswith("b")},
                      {n: r for n, r in results.items() if n.startswith("p")}],
                     {n: {"connections": 1, "execs": 1} for n in owned}, {n: "10.0.0.1" for n in owned})


def test_a_proxy_in_one_worker_waits_for_backends_in_the_other_and_every_call_is_relayed():
    out = io.StringIO()
    reporter = Reporter(stream=out)
    results = workers.spread(["b1", "b2", "p"], 2, 20, converge, reporter)
    by_host = {n: r for outcome in results for phase in outcome.phases for n, r in phase.items()}
    assert by_host["p"].steps[0].status == "skipped"        # it heard that b2, in the other worker, failed
    pids = {n: r.steps[0].reason for n, r in by_host.items()}
    assert pids["b1"] == pids["p"] != pids["b2"] != f"pid {os.getpid()}"
    lines = out.getvalue().splitlines()
    assert "b1 | changed | unit: " + pids["b1"] in lines and "b2 | failed | unit: " + pids["b2"] in lines
    assert {r.host for r in reporter._results} == {"b1", "b2", "p"}         # tracked in the parent too
    assert [r.steps[0].label for r in sorted(reporter._results, key=lambda r: r.host)] == ["unit", "unit", "switch"]


def test_a_worker_that_dies_fails_its_hosts_with_the_reason():
    def dies(owned, forks, board, forward):
        if "b2" in owned:
            raise RuntimeError("boom")
        return converge(owned, forks, board, forward)
    results = workers.spread(["b1", "b2"], 2, 4, dies, Reporter(stream=io.StringIO()))
    assert isinstance(results[0], Converged)
    assert isinstance(results[1], str) and "RuntimeError: boom" in results[1]


def test_the_workers_results_merge_into_one_run_in_the_phases_order(monkeypatch):
    from types import SimpleNamespace
    hosts = [SimpleNamespace(name=n) for n in ("web1", "web2", "web3", "proxy")]
    phases = [("backends", hosts[:3]), ("proxies", hosts[3:])]

    def fake(inventory, phases_, options, connections, reporter, serial=None, owned=None, board=None):
        if "web2" in owned:
            os._exit(3)         # a worker that dies without a word
        done = [{h.name: HostResult(h.name, [StepResult("s", "ok")]) for h in hs if h.name in owned}
                for _, hs in phases_]
        return Converged(done, {n: {"connections": 1, "execs": 1} for n in owned}, {n: "x" for n in owned})
    monkeypatch.setattr(deploy, "converge_phases", fake)
    monkeypatch.setattr(deploy, "preload", lambda: None)
    merged = deploy._in_workers(None, phases, deploy.Options(forks=4), Reporter(stream=io.StringIO()),
                                ["web1", "web2", "web3", "proxy"], 2)
    # the backends, the proxies, then the proxies again for tls: acme's step after them
    assert [list(p) for p in merged.phases] == [["web1", "web2", "web3"], ["proxy"], []]
    assert merged.phases[0]["web2"].error == "worker process 2 ended without a result (exit 3)"
    assert not merged.phases[0]["web1"].failed and set(merged.ssh) == {"web1", "web3"}


def test_a_proxy_waiting_for_a_backend_whose_worker_died_hears_that_it_failed():
    def run(owned, forks, board, forward):
        if "b1" in owned:
            os._exit(3)         # dies before it could say anything about b1
        failures = board.wait_done(["b1"])
        return Converged([{}, {"p": HostResult("p", [StepResult("switch", "skipped", str(failures))])}], {}, {})
    results = workers.spread(["b1", "p"], 2, 4, run, Reporter(stream=io.StringIO()))
    assert results[0].startswith("worker process 1 ended without a result")
    assert results[1].phases[1]["p"].steps[0].reason == "{'b1': 'failed (its worker process ended)'}"
