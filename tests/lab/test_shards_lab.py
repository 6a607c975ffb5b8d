"""--shard on the lab. The docs' two recipes (docs/recipes/) are parsed and their commands run here
as N local processes at once, stage after stage; and 4 shards run at once on a larger lab. Each
time the shards cover the selection exactly once, and `provision report merge` of their --json files
prints the recap, and exits with the code, of one unsharded run.

The larger lab has PROVISION_SHARD_LAB_HOSTS hosts (default 23, as CI runs it; 100 for the issue's
figure, run by hand): it grows the lab, converges it, then shrinks it back to 3 hosts."""
import compileall
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, invoke

pytestmark = pytest.mark.lab

RECIPES = ROOT / "docs" / "recipes"
LARGE = int(os.environ.get("PROVISION_SHARD_LAB_HOSTS", "23"))
PATH = f"{Path(sys.executable).parent}:{os.environ['PATH']}"        # `provision` of this interpreter
# ... running this checkout's code (an editable install may point elsewhere)
PYTHONPATH = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])


def k8s_stages(path: Path) -> list[list[tuple[dict, str]]]:
    """Each Indexed Job of the manifest, in order: its pods as (environment, shell command)."""
    stages = []
    for job in yaml.safe_load_all(path.read_text()):
        assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
        spec = job["spec"]
        assert spec["completionMode"] == "Indexed" and spec["parallelism"] == spec["completions"] > 1
        pod = spec["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        [container] = pod["containers"]
        assert container["command"] == ["sh", "-c"] and container["workingDir"] == "/src"
        env = {e["name"]: e["value"] for e in container["env"]}
        stages.append([({**env, "JOB_COMPLETION_INDEX": str(i)}, container["args"][0])
                       for i in range(spec["completions"])])
    return stages


def actions_stages(path: Path) -> tuple[list[list[tuple[dict, str]]], str, dict]:
    """The workflow's matrix jobs in `needs` order, each shard as (environment, shell command)
    with the ${{ }} expressions it uses filled in; the merge step's command; the workflow's env."""
    flow = yaml.safe_load(path.read_text())
    jobs, done, stages, merge = flow["jobs"], set(), [], None
    while len(done) < len(jobs):
        ready = [n for n, j in jobs.items() if n not in done and set(np(j.get("needs"))) <= done]
        assert ready, "the jobs' needs form a cycle"
        for name in ready:
            job = jobs[name]
            steps = {s.get("name"): s for s in job["steps"]}
            if "matrix" in job.get("strategy", {}):
                shards = job["strategy"]["matrix"]["shard"]
                stages.append([({}, fill(steps["deploy"]["run"], {"matrix.shard": s, "strategy.job-total": len(shards)}))
                               for s in shards])
            else:
                merge = steps["merge"]["run"]
            done.add(name)
    return stages, merge, flow.get("env", {})


def np(needs):
    return [needs] if isinstance(needs, str) else list(needs or [])


def fill(text: str, values: dict) -> str:
    out = re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", lambda m: str(values[m.group(1)]), text)
    assert "${{" not in out
    return out


def run_at_once(commands: list[tuple[dict, str]], env: dict, cwd: Path = ROOT) -> list[int]:
    """Every command as its own process, all started before any is waited for."""
    procs = [subprocess.Popen(["sh", "-c", command], cwd=cwd,
                              env={**os.environ, "PATH": PATH, "PYTHONPATH": PYTHONPATH, **own, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for own, command in commands]
    codes = []
    for proc in procs:
        out, _ = proc.communicate(timeout=1200)
        print(out[-1500:])
        codes.append(proc.returncode)
    return codes


def recap_lines(output: str) -> list[str]:
    return output.split("\nRECAP\n", 1)[1].split("\ntook ")[0].strip().splitlines()


def covered(files: list[Path], selection: list[str]) -> None:
    """The shards' hosts: each of the selection exactly once, nothing else."""
    hosts = [name for f in files for name in json.loads(f.read_text())["hosts"]]
    assert sorted(hosts) == sorted(selection)


def selection(inventory: Path, group: str) -> list[str]:
    from provision.inventory import load
    return [h.name for h in load(inventory).group(group)]


def merged(files: list[Path], out: Path) -> subprocess.CompletedProcess:
    return invoke("report", "merge", "--json", str(out), "--", *map(str, files))


def test_the_kubernetes_recipe_runs_as_indexed_pods_and_merges_into_one_run(deployed, tmp_path):
    whole = invoke("deploy", "-i", "inventory/lab.yml", check=0)
    results = tmp_path / "results"
    results.mkdir()
    stages = k8s_stages(RECIPES / "k8s-indexed-jobs.yml")
    assert [{env["STAGE"] for env, _ in stage} for stage in stages] == [{"backends"}, {"proxies"}]
    for stage in stages:
        env = {"INVENTORY": str(ROOT / "inventory/lab.yml"), "RESULTS": str(results)}
        assert run_at_once(stage, env) == [0] * len(stage)
        group = stage[0][0]["STAGE"]
        covered(sorted(results.glob(f"{group}-*.json")), selection(ROOT / "inventory/lab.yml", group))
    files = sorted(results.glob("backends-*.json")) + sorted(results.glob("proxies-*.json"))
    merge = merged(files, tmp_path / "deploy.json")
    assert (merge.returncode, recap_lines(merge.stdout)) == (whole.returncode, recap_lines(whole.stdout))


def test_the_ci_matrix_recipe_runs_its_jobs_in_needs_order_and_merges_into_one_run(deployed, tmp_path):
    whole = invoke("deploy", "-i", "inventory/lab.yml", check=0)
    stages, merge_command, flow_env = actions_stages(RECIPES / "github-actions-matrix.yml")
    assert len(stages) == 2 and "INVENTORY" in flow_env
    # A runner's workspace of its own (the test's folder): the commands are run as written there.
    env = {"INVENTORY": str(ROOT / "inventory/lab.yml")}
    for stage in stages:
        assert run_at_once(stage, env, cwd=tmp_path) == [0] * len(stage)
    for group in ("backends", "proxies"):
        covered(sorted((tmp_path / "results").glob(f"{group}-*.json")), selection(ROOT / "inventory/lab.yml", group))
    merge = subprocess.run(["sh", "-c", merge_command], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "PATH": PATH, "PYTHONPATH": PYTHONPATH}, timeout=120)
    assert (merge.returncode, recap_lines(merge.stdout)) == (whole.returncode, recap_lines(whole.stdout))
    assert list(json.loads((tmp_path / "deploy.json").read_text())["hosts"]) == \
        selection(ROOT / "inventory/lab.yml", "backends") + selection(ROOT / "inventory/lab.yml", "proxies")


def timed_deploy(*args: str, cwd: Path = ROOT) -> tuple[float, float]:
    """Wall and CPU time (user + system, the whole command) of one `invoke deploy`."""
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "invoke", "deploy", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stdout[-2000:]
    return time.perf_counter() - t0, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def control_machine_cost(inventory: str, tmp_path: Path, runs: int = 3) -> None:
    """Prints the control machine's wall and CPU time per host of a no-op: worker processes (the
    default), one process (--workers 1), and, with PROVISION_COMPARE_WITH=REV, that revision's
    code (e.g. main before this change). Figures, not assertions."""
    compileall.compile_dir(str(ROOT / "provision"), quiet=1)
    variants = [("worker processes", ROOT, ()), ("one process", ROOT, ("--workers", "1"))]
    revision = os.environ.get("PROVISION_COMPARE_WITH")
    if revision:
        before = tmp_path / "before"
        before.mkdir()
        archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        compileall.compile_dir(str(before / "provision"), quiet=1)
        variants.append((f"{revision}'s code", before, ()))
    load = os.getloadavg()[0]
    for label, cwd, extra in variants:
        times = [timed_deploy("-i", inventory, "--mode", "balancer", *extra, cwd=cwd) for _ in range(runs)]
        wall, cpu = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
        print(f"{LARGE} hosts, no-op, {label}: wall {wall:.2f} s, cpu {cpu:.2f} s (median of {runs}); per host "
              f"{1000 * wall / LARGE:.1f} ms wall, {1000 * cpu / LARGE:.1f} ms cpu; load average {load:.1f} before")


@pytest.mark.slow
def test_four_shards_at_once_cover_a_large_lab_exactly_once_and_merge_into_one_run(lab, tmp_path):
    from provision.lab import api
    try:
        info = api.up(extra=LARGE - 3, log=lambda m: None)
        inventory = str(info.inventory)
        started = time.monotonic()
        invoke("deploy", "-i", inventory, "--mode", "balancer", check=0, timeout=1200)
        print(f"\n{LARGE} hosts: converged in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        whole = invoke("deploy", "-i", inventory, "--mode", "balancer", check=0)
        print(f"{LARGE} hosts: unsharded no-op {time.monotonic() - started:.1f} s")
        control_machine_cost(inventory, tmp_path)
        files = []
        for group in ("backends", "proxies"):
            stage = [({}, f"provision deploy -i {inventory} --mode balancer --limit {group} --shard {k}/4 "
                          f"--json {tmp_path}/{group}-{k}.json") for k in range(1, 5)]
            started = time.monotonic()
            assert run_at_once(stage, {}) == [0] * 4
            print(f"{LARGE} hosts: {group}, 4 shards at once, {time.monotonic() - started:.1f} s")
            shard_files = [tmp_path / f"{group}-{k}.json" for k in range(1, 5)]
            covered(shard_files, selection(Path(inventory), group))
            files += shard_files
        print({f.name: len(json.loads(f.read_text())["hosts"]) for f in files})
        merge = merged(files, tmp_path / "deploy.json")
        assert (merge.returncode, recap_lines(merge.stdout)) == (whole.returncode, recap_lines(whole.stdout))
    finally:
        api.up(extra=0, log=lambda m: None)
        invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer")
