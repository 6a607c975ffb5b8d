"""The dev tasks (`invoke test`, `invoke bench`, `invoke mutate`), collected into the project's
tasks.py as Invoke collects its own from `invocations`."""
from __future__ import annotations

from provision.cli import exit_with, task_printing

task = task_printing("error")


@task(name="test", help={"pytest_args": "extra arguments for pytest, e.g. '-k inventory' or '-m \"not lab\"'"})
def test_(c, pytest_args=""):
    """Run the whole suite, unit and lab tests; installs the apt packages the tests use first."""
    from .suite import run_suite        # imported when run: `invoke --list` stays light
    exit_with(run_suite(pytest_args))


@task(help={"extra": "web hosts added for the large lab (default 20: 23 hosts; 0: 3 hosts only)",
            "runs": "no-op runs per lab size (median, min, max)",
            "json": "write the results to this file instead of docs/bench.json (docs left as they are)",
            "peers": "also time Ansible, pyinfra and a naive Fabric script (bench/peers/) in the same run",
            "cold_runs": "with --peers: cold runs per tool at 3 hosts (median)",
            "large": "web hosts added for one more size, ours only (97: the 100-host scenario)",
            "render": "only render docs/bench.md from docs/bench.json (no lab)",
            "only": "only these sizes, as host counts (e.g. 3 or 23,100); the JSON's other sizes are kept",
            "loaded": "write figures taken at a load average above the core count (marked as such)",
            "settle": "seconds to wait, before each run, for the load average to come down (default 90)"})
def bench(c, extra=20, runs=5, json=None, peers=False, cold_runs=3, large=0, render=False, only=None,
          loaded=False, settle=90):
    """Time deploy on the lab: cold, no-op, drift, change and the ssh floor; exits 1 on a missed target."""
    from .speed import main, parse_only, render as render_docs      # imported when run, as above
    sizes = parse_only(only)
    exit_with(render_docs() if render else main(extra=int(extra), runs=int(runs), json_path=json, with_peers=peers,
                                                cold_runs=int(cold_runs), large=int(large), only=sizes,
                                                allow_loaded=loaded, settle_max=float(settle)))


@task(positional=["module"],
      help={"module": "pure modules (setup.cfg's [mutmut] only_mutate), comma-separated: a module, one file of "
                      "a pure package (inventory.validate) or a prefix (ops), dotted or as a path "
                      "(provision/sites); default: all of them",
            "named": "apply the audit's twelve one-line mutations by hand and record the unit test that fails",
            "rescore": "recount from mutmut's last recorded results with the current equivalent list (no run)",
            "workers": "mutants run in parallel (default 1: the machine is shared)",
            "minutes": "time budget of the run; mutants not reached are recorded as not checked",
            "survivors": "run again only the module's survivors and unchecked mutants"})
def mutate(c, module=None, named=False, rescore=False, workers=1, minutes=None, survivors=False):
    """Mutation testing (mutmut) of the pure modules against the unit tests; writes docs/quality.md."""
    from .mutation import main      # imported when run, as above
    exit_with(main(module=module, named=named, rescored=rescore, workers=int(workers),
                   minutes=None if minutes is None else float(minutes), survivors=survivors))


DEV_TASKS = (test_, bench, mutate)
