"""`invoke bench --peers`: the same job done by Ansible, pyinfra and a naive Fabric script
(the jobs in this folder), timed on the same lab hosts in the same run as our deploy.

The tools live in their own venv under .lab/peers (ansible = ansible-core plus community.general,
from PyPI's `ansible`). The top half is pure: the job from the inventory, each tool's inputs, its
changed counts parsed from its output. The runner below it touches the lab.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..stats import stats

ROOT = Path(__file__).resolve().parents[2]
PEERS = Path(__file__).resolve().parent
VENV = ROOT / ".lab" / "peers"
PACKAGES = ("ansible==12.3.0", "pyinfra==3.10.0", "fabric>=3.2,<4")
TOOLS = ("ansible", "pyinfra", "fabric")


# --- pure ----------------------------------------------------------------------------------------

def job(inventory, ssh_config: Path, known_hosts: Path | None = None) -> dict:
    """What every tool deploys, from our inventory: proxies, backends with their apps."""
    return {"ssh_config": str(ssh_config), "known_hosts": str(known_hosts) if known_hosts else None,
            "proxies": [{"name": h.name, "address": h.address} for h in inventory.group("proxies")],
            "backends": [{"name": h.name, "address": h.private_address, "apps": h.apps}
                         for h in inventory.group("backends")]}


def members(spec: dict) -> list[dict]:
    return [{"address": b["address"], "port": a["port"]} for b in spec["backends"] for a in b["apps"]]


def ansible_inventory(spec: dict) -> dict:
    return {"all": {"children": {
        "proxies": {"hosts": {p["name"]: {"ansible_host": p["name"], "members": members(spec)}
                              for p in spec["proxies"]}},
        "backends": {"hosts": {b["name"]: {"ansible_host": b["name"], "apps": b["apps"], "bind": b["address"]}
                               for b in spec["backends"]}}}}}


def ansible_cfg(spec: dict, forks: int) -> str:
    return ("[defaults]\n"
            f"forks = {forks}\n"
            "host_key_checking = True\n"
            "interpreter_python = /usr/bin/python3\n"
            "[ssh_connection]\n"
            "pipelining = True\n"
            f"ssh_args = -F {spec['ssh_config']} -o ControlMaster=auto -o ControlPersist=60s\n")


def pyinfra_inventory(spec: dict) -> str:
    """A pyinfra inventory module; it reaches the hosts through the lab's ssh_config."""
    def host(name, data):
        known = {"ssh_known_hosts_file": spec["known_hosts"], "ssh_strict_host_key_checking": "yes"} \
            if spec.get("known_hosts") else {}
        return (name, {"ssh_config_file": spec["ssh_config"], **known, **data})
    proxies = [host(p["name"], {"members": members(spec)}) for p in spec["proxies"]]
    backends = [host(b["name"], {"apps": b["apps"], "bind": b["address"]}) for b in spec["backends"]]
    return f"proxies = {proxies!r}\nbackends = {backends!r}\n"


ANSIBLE_RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
FABRIC_LINE = re.compile(r"^(\S+) changed=(\d+)$", re.M)
# pyinfra logs "[host] Success" for an operation that ran commands, "[host] No changes" otherwise.
PYINFRA_OP = re.compile(r"^\s*\[(\S+)\]\s+(Success|No changes)", re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def changed_counts(tool: str, output: str) -> dict[str, int]:
    """Host -> steps changed, from a tool's own report."""
    if tool == "ansible":
        return {h: int(c) for h, c, _, _ in ANSIBLE_RECAP.findall(output)}
    if tool == "fabric":
        return {h: int(c) for h, c in FABRIC_LINE.findall(output)}
    counts: dict[str, int] = {}
    for h, status in PYINFRA_OP.findall(ANSI.sub("", output)):
        counts[h] = counts.get(h, 0) + (status == "Success")
    return counts


def messages(spec: dict) -> set[str]:
    return {a["message"] for b in spec["backends"] for a in b["apps"]}


# --- runner --------------------------------------------------------------------------------------

@dataclass
class PeerRun:
    tool: str
    wall: float
    rc: int
    changed: dict
    output: str


def ensure_venv(log=print) -> Path:
    """.lab/peers with the peers' packages (installed once; pip's own cache makes it quick later)."""
    py = VENV / "bin" / "python"
    if not (VENV / "bin" / "ansible-playbook").exists() or not (VENV / "bin" / "pyinfra").exists():
        log(f"installing {', '.join(PACKAGES)} into {VENV.relative_to(ROOT)}")
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    return VENV


def write_inputs(workdir: Path, spec: dict) -> None:
    import yaml
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "job.json").write_text(json.dumps(spec, indent=1))
    (workdir / "inventory.yml").write_text(yaml.safe_dump(ansible_inventory(spec)))
    (workdir / "ansible.cfg").write_text(ansible_cfg(spec, forks=max(5, len(spec["backends"]) + 1)))
    (workdir / "inventory.py").write_text(pyinfra_inventory(spec))


def argv(tool: str, workdir: Path) -> list[str]:
    bin_ = VENV / "bin"
    if tool == "ansible":
        return [str(bin_ / "ansible-playbook"), "-i", str(workdir / "inventory.yml"), str(PEERS / "ansible/site.yml")]
    if tool == "pyinfra":
        return [str(bin_ / "pyinfra"), "-y", str(workdir / "inventory.py"), str(PEERS / "pyinfra/deploy.py")]
    return [str(bin_ / "python"), str(PEERS / "fabric_naive.py"), str(workdir / "job.json")]


def run(tool: str, workdir: Path, timeout: float = 600) -> PeerRun:
    import os
    env = {**os.environ, "ANSIBLE_CONFIG": str(workdir / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "PYINFRA_PROGRESS": "off", "NO_COLOR": "1"}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv(tool, workdir), cwd=workdir, capture_output=True, text=True, timeout=timeout,
                              env=env)
    except subprocess.TimeoutExpired as exc:     # a hung run is a failed run, not the end of the bench
        output = _text(exc.stdout) + _text(exc.stderr) + f"\n{tool}: stopped after {timeout:g} s"
        return PeerRun(tool, time.perf_counter() - t0, -1, changed_counts(tool, output), output)
    wall = time.perf_counter() - t0
    output = proc.stdout + proc.stderr
    return PeerRun(tool, wall, proc.returncode, changed_counts(tool, output), output)


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def curl_answers(address: str, n: int = 4, settle: float = 10.0) -> list[str]:
    """``n`` answers through the proxy, once it answers at all (apps may still be starting)."""
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{address}/", timeout=5):
                break
        except OSError:
            time.sleep(0.5)
    out = []
    for _ in range(n):
        try:
            with urllib.request.urlopen(f"http://{address}/", timeout=5) as resp:
                out.append(resp.read().decode()[:100])
        except OSError as exc:
            out.append(f"error: {exc}")
    return out


def cold(api, tool: str, spec: dict, workdir: Path, log=print, label: str = "") -> tuple[float, str | None]:
    """One cold run of ``tool`` on fresh hosts, then a request through the proxy: its wall time,
    and what went wrong (None: it changed every host and the proxy answers with every app)."""
    hosts = {p["name"] for p in spec["proxies"]} | {b["name"] for b in spec["backends"]}
    api.reset(log=lambda m: None)
    r = run(tool, workdir)
    answers = curl_answers(spec["proxies"][0]["address"])
    ok_answers = set(answers) == messages(spec)
    log(f"  {tool} cold{label}: {r.wall:.1f} s, exit {r.rc}, changed {sum(r.changed.values())} on "
        f"{len(r.changed)} hosts, curl {'ok' if ok_answers else answers}")
    if r.rc != 0 or set(r.changed) != hosts or not all(r.changed.values()) or not ok_answers:
        return r.wall, f"cold{label}: exit {r.rc}, changed {r.changed}, answers {answers}: {r.output[-800:]}"
    return r.wall, None


def noop(tool: str, spec: dict, workdir: Path, log=print) -> tuple[float, str | None]:
    """One run of ``tool`` on hosts it converged: its wall time, and what went wrong (None: it
    changed nothing)."""
    hosts = {p["name"] for p in spec["proxies"]} | {b["name"] for b in spec["backends"]}
    r = run(tool, workdir)
    log(f"  {tool} no-op: {r.wall:.2f} s, exit {r.rc}, changed {r.changed}")
    if r.rc != 0 or set(r.changed) != hosts or any(r.changed.values()):
        return r.wall, f"no-op: exit {r.rc}, changed {r.changed}: {r.output[-800:]}"
    return r.wall, None


def measure(api, spec: dict, workdir: Path, cold_runs: int, log=print) -> dict:
    """Per tool, one after the other: cold runs on fresh hosts (each followed by a curl check
    through the proxy), then a no-op run whose changed count must be 0. (`invoke bench --peers`
    interleaves the tools with ours instead: bench/speed.py.)"""
    write_inputs(workdir, spec)
    out = {}
    for tool in TOOLS:
        colds, noops, problems = [], [], []
        for i in range(cold_runs):
            wall, problem = cold(api, tool, spec, workdir, log, f" {i + 1}")
            colds.append(wall)
            problems += [problem] if problem else []
        if not problems:        # a no-op after a failed cold run measures nothing
            wall, problem = noop(tool, spec, workdir, log)
            noops.append(wall)
            problems += [problem] if problem else []
        out[tool] = {"cold": stats(colds), "no-op": stats(noops), "problems": problems}
    return out
