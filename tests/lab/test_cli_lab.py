"""The `provision` command on the lab, as a user runs it: a cold deploy's live progress in a terminal
(tmux); installed with pip into a fresh venv and run from another folder; -e choosing the mode;
the exit codes of deploy, status, run and facts (4 one sshd stopped, 2 a host failed, 130 after
Ctrl-C, with a recap); verify against a host that accepts TCP and never answers; tls.renew's 4 and
130 against loopback ports. The lab is
deployed once, cold, and shared by the file; every wait is bounded."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from provision.lab import api, nspawn
from provision.lab.system import cache_dir, ensure_packages

from conftest import ROOT, get, recap, ssh, add_sudo_user

pytestmark = pytest.mark.lab

INVENTORY = str(ROOT / "inventory" / "lab.yml")
PROXY = "http://10.123.0.10/"
PROGRESS = re.compile(r"^(\S+)\s{2,}(.+?)\s{2}(\d+) s\s*$")      # a live line: HOST  PHASE  N s


def provision(*args, timeout=300, env=None, cwd=ROOT):
    """`python -m provision ARGS` from the checkout, as a user runs it: (exit code, stdout, stderr)."""
    run = subprocess.run([sys.executable, "-m", "provision", *args], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    return run.returncode, run.stdout, run.stderr


def test_cold_deploy_in_a_terminal_shows_each_hosts_progress_changing_during_apt(lab, tmp_path):
    ensure_packages(print, ["tmux"], "the progress test uses")
    reset = time.monotonic()
    api.reset(log=lambda msg: print(f"lab: {msg}"))
    print(f"lab.reset: {time.monotonic() - reset:.1f} s")
    server = f"pv-progress-{os.getpid()}"       # a tmux server of our own, ended by its socket
    done = tmp_path / "exit"
    command = (f"cd {ROOT} && PYTHONPATH={ROOT} {sys.executable} -m provision deploy -i {INVENTORY}; "
               f"echo $? > {done}")
    tmux = ["tmux", "-L", server, "-f", "/dev/null"]
    # the pane stays once the deploy ends, for the last capture
    subprocess.run(tmux + ["new-session", "-d", "-x", "160", "-y", "45", "sh", "-c", command, ";",
                           "set-option", "-g", "remain-on-exit", "on"], check=True,
                   env={**os.environ, "TERM": "xterm-256color"}, timeout=30)
    seen: dict[str, list[tuple[str, int]]] = {}
    started = time.monotonic()
    try:
        while not done.exists() and time.monotonic() - started < 400:
            screen = subprocess.run(tmux + ["capture-pane", "-p"], capture_output=True, text=True,
                                    timeout=10).stdout
            for line in screen.splitlines():
                m = PROGRESS.match(line)
                if m and m.group(1) in lab.hosts:
                    entry = (m.group(2), int(m.group(3)))
                    if not seen.get(m.group(1)) or seen[m.group(1)][-1] != entry:
                        seen.setdefault(m.group(1), []).append(entry)
            time.sleep(0.25)
        final = subprocess.run(tmux + ["capture-pane", "-p", "-S", "-200"], capture_output=True, text=True,
                               timeout=10).stdout
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True, timeout=10)
    assert done.exists() and done.read_text().strip() == "0", final[-3000:]
    elapsed = time.monotonic() - started
    print(f"cold deploy in tmux: {elapsed:.1f} s; progress lines seen per host: "
          f"{ {h: len(v) for h, v in seen.items()} }")
    apt_hosts = []
    for host in lab.hosts:
        entries = seen.get(host, [])
        phases = [phase for phase, _ in entries]
        # short steps can fall between two captures: two phases and a ticking line are the floor
        assert len(set(phases)) >= 2 and len(entries) >= 3, f"{host}: its line moved through {entries}"
        assert any(p.startswith("applying step") for p in phases), f"{host}: {phases}"
        apt = [(phase, s) for phase, s in entries if ": packages " in phase]
        if apt:
            apt_hosts.append(host)
            # while apt runs, the host's line keeps changing: the seconds in the step tick
            assert len({s for _, s in apt}) >= 2, f"{host}: the apt step's line never changed: {apt}"
    # a cold lab host has python3 already, so the apt step is the proxy's (Apache)
    assert "proxy" in apt_hosts, seen.get("proxy")
    assert re.search(r"^proxy ok=\d+ changed=\d+ failed=0 unreachable=0 skipped=\d+$", final, re.M), final[-2000:]
    assert not any(PROGRESS.match(line) for line in final.splitlines()[-8:]), "the live lines are gone at the end"


def test_installed_with_pip_it_deploys_and_verifies_from_another_folder(lab, tmp_path):
    """A fresh venv outside the checkout, `pip install CHECKOUT` (not editable), then from /tmp."""
    source = tmp_path / "checkout"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".lab", ".tls", "build", "*.egg-info",
                                                                "__pycache__", ".hypothesis", "mutants", ".vagrant"))
    venv = tmp_path / "venv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(source)], capture_output=True,
                             text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    print(f"fresh venv and pip install: {time.monotonic() - started:.1f} s")
    command = str(venv / "bin" / "provision")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*args):
        return subprocess.run([command, *args], cwd="/tmp", capture_output=True, text=True, timeout=600, env=clean)
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("provision 0."), version
    deployed = run("deploy", "-i", INVENTORY)
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-2000:]
    assert set(recap(deployed.stdout)) == set(lab.hosts)
    verified = run("verify", "-i", INVENTORY)
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-2000:]
    assert re.search(r"\d+ passed", verified.stdout) and not re.search(r"\d+ failed", verified.stdout)
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import provision.data as d; "
                            "print(d.TEMPLATES); print(d.SUITE)"], cwd="/tmp", capture_output=True, text=True,
                           env=clean, timeout=60).stdout.split()
    assert all(p.startswith(str(venv)) for p in where), where


def test_extra_vars_choose_the_mode_and_a_bad_one_names_e(lab, tmp_path):
    code, out, err = provision("deploy", "-i", INVENTORY, "-e", "proxy_mode=single")
    assert code == 0, out[-2000:] + err
    answers = {get(PROXY)[2] for _ in range(6)}
    assert answers == {"Hello world!"}, answers
    assert provision("verify", "-i", INVENTORY, "-e", "proxy_mode=single")[0] == 0
    (tmp_path / "vars.yml").write_text("proxy_mode: balancer\n")
    code, out, err = provision("deploy", "-i", INVENTORY, "-e", f"@{tmp_path / 'vars.yml'}")
    assert code == 0, out[-2000:] + err
    assert {get(PROXY)[2] for _ in range(6)} == {"Hello world!", "Howdy world!"}
    code, out, err = provision("deploy", "-i", INVENTORY, "-e", "proxy_mode=round-robin")
    assert code == 1 and out == "" and err.count("\n") == 1, (out, err)
    assert err == "error: -e: host 'proxy': field 'proxy_mode' must be one of single, balancer, got 'round-robin'\n"


# -- exit codes, command by command ----------------------------------------------------------------

DAY_TWO = {"deploy": ["deploy"], "status": ["status"], "run": ["run"], "facts": ["facts", "all"]}
AFTER = {"run": ["--", "true"]}         # the words after --, which end the options


def container_pid(host: str) -> int:
    """The host's own PID 1, as this machine sees it: the child of its nspawn process (read now:
    a reset gives the lab new processes)."""
    parent = nspawn.pid(cache_dir(), host)
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return int(children[0])


def answers_ssh(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=2) as s:
            s.settimeout(3)
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up after {timeout:.0f} s waiting for {what}"
        time.sleep(0.2)


def test_one_stopped_sshd_gives_4_with_the_reason_in_plain_words(lab):
    address = lab.hosts["web2"]
    # the host itself starts sshd again in 90 s, whatever happens to this test
    ssh(lab, "web2", "systemd-run --on-active=90 systemctl start ssh.service >/dev/null 2>&1; "
                     "systemctl stop ssh.service")
    try:
        wait_for(lambda: not answers_ssh(address), 20, "web2's sshd to stop")
        for name, args in DAY_TWO.items():
            started = time.monotonic()
            code, out, err = provision(*args, "-i", INVENTORY, *AFTER.get(name, []), timeout=120)
            took = time.monotonic() - started
            print(f"{name} with web2's sshd stopped: exit {code} in {took:.1f} s")
            assert code == 4, f"{name}: exit {code}\n{out[-2000:]}{err[-2000:]}"
            line = f"web2 | unreachable | cannot connect to {address}:22: connection refused"
            assert line in (out + err).splitlines(), f"{name}: {out[-2000:]}{err[-1000:]}"
            assert "Traceback" not in out + err and "No existing session" not in out + err
    finally:
        subprocess.run(["nsenter", "-t", str(container_pid("web2")), "-m", "-u", "-i", "-n", "-p",
                        "systemctl", "start", "ssh.service"], capture_output=True, timeout=30)
        wait_for(lambda: answers_ssh(address), 60, "web2's sshd to answer again")


def test_a_failed_host_gives_2(lab):
    # deploy: an apply whose configtest fails (the previous files come back, Apache keeps serving)
    bad = json.dumps({"proxy_extra_directives": ["NoSuchDirective on"]})
    code, out, err = provision("deploy", "-i", INVENTORY, "-l", "proxy", "-e", bad)
    assert code == 2 and recap(out)["proxy"]["failed"] == 1 and "configtest" in out, out[-2000:] + err
    assert get(PROXY)[0] == 200
    # status and facts: a login whose sudo asks a password nobody gave; run: a command that fails on web2
    add_sudo_user(lab, "pvcli", "pvcli-secret-1")
    no_password = {"PROVISION_SUDO_PASSWORD": ""}
    for name, args in (("status", ["status", "-i", INVENTORY, "-e", "ansible_user=pvcli"]),
                       ("facts", ["facts", "web1", "-i", INVENTORY, "-e", "ansible_user=pvcli"]),
                       ("run", ["run", "-i", INVENTORY, "--", "test", "$(hostname)", "!=", "web2"])):
        code, out, err = provision(*args, env=no_password)
        assert code == 2, f"{name}: exit {code}\n{out[-2000:]}{err[-2000:]}"
        assert "Traceback" not in out + err
    assert provision("deploy", "-i", INVENTORY)[0] == 0


class Silent:
    """A listener on loopback that accepts TCP and never says a word (counts its connections)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        for conn in self.held:
            conn.close()
        self.sock.close()


def interrupted_once_it_waits(silent: Silent, *args) -> tuple[int, str, float]:
    """`python -m provision ARGS`, sent Ctrl-C once it holds a connection to ``silent``: (exit code,
    stdout and stderr, seconds from Ctrl-C to its end)."""
    before = len(silent.held)
    run = subprocess.Popen([sys.executable, "-m", "provision", *args], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_for(lambda: len(silent.held) > before or run.poll() is not None, 30, f"{args[0]} to reach {silent.port}")
        sent = time.monotonic()
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=20)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(10)
    return run.returncode, out, time.monotonic() - sent


def test_ctrl_c_gives_130_after_a_recap(lab, tmp_path):
    """A backend that never answers holds each command up; Ctrl-C then ends it with a recap."""
    silent = Silent()
    slow = tmp_path / "slow.yml"
    slow.write_text(f"backends:\n  hosts:\n    slow:\n      ansible_host: 127.0.0.1\n      ansible_port: {silent.port}\n"
                    f"      private_address: {lab.hosts['web1']}\n"
                    "      apps: [{name: slow, port: 8099, message: Slow}]\n")
    try:
        for name, args in DAY_TWO.items():
            code, out, after = interrupted_once_it_waits(silent, *args, "-i", INVENTORY, "-i", str(slow),
                                                         *AFTER.get(name, []))
            print(f"{name}: exit {code} {after:.1f} s after Ctrl-C")
            assert code == 130, f"{name}: exit {code}\n{out[-3000:]}"
            assert "INTERRUPTED" in out and "RECAP" in out and re.search(r"^slow interrupted", out, re.M), \
                f"{name}:\n{out[-3000:]}"
            assert "Traceback" not in out
    finally:
        silent.close()


def test_verify_against_a_host_that_never_answers_is_one_line_and_4_within_30_s(tmp_path):
    silent = Silent()
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"[proxies]\nbox ansible_host=127.0.0.1 ansible_port={silent.port}\n[backends]\n"
                         "box apps=\"[{'name': 'hello', 'port': 8080, 'message': 'Hi'}]\"\n")
    started = time.monotonic()
    try:
        code, out, err = provision("verify", "-i", str(inventory), timeout=60, cwd=tempfile.gettempdir())
    finally:
        silent.close()
    took = time.monotonic() - started
    print(f"verify against a silent host: exit {code} in {took:.1f} s")
    assert code == 4 and took < 30, (code, took, out, err)
    lines = [line for line in (out + err).splitlines() if line.startswith("box ")]
    assert lines == [f"box | unreachable | no SSH banner from 127.0.0.1:{silent.port} within 10 s (it accepts TCP "
                     "but does not answer as sshd) (its checks are skipped)"], out + err
    assert "Traceback" not in out + err and len((out + err).splitlines()) <= 3, out + err


def acme_proxy_at(tmp_path, port: int) -> Path:
    """An inventory whose one proxy has tls: acme on the control route and sshd at 127.0.0.1:port."""
    path = tmp_path / "acme.yml"
    path.write_text(
        "proxies:\n  vars:\n    tls: acme\n    acme_client: control\n    acme_email: ops@example.test\n"
        "    acme_agree_tos: true\n    acme_directory: https://127.0.0.1:9/dir\n"
        "    sites: [{server_name: app.example.test, routes: [{path: /, pool: web}]}]\n"
        "    pools: {web: {members: ['web1:hello']}}\n"
        f"  hosts:\n    box: {{ansible_host: 127.0.0.1, ansible_port: {port}}}\n"
        "backends:\n  hosts:\n    web1: {ansible_host: 127.0.0.2, apps: [{name: hello, port: 8080, message: Hi}]}\n")
    return path


def test_tls_renew_keeps_the_contract_4_unreachable_and_130_after_a_recap(tmp_path):
    """tls.renew, a row of the command table: a proxy whose sshd refuses gives 4 with the reason in
    plain words and a schema-1 --json; a proxy that never answers, then Ctrl-C, gives 130 after a recap."""
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()          # nothing listens there now: connection refused
    document = tmp_path / "renew.json"
    started = time.monotonic()
    code, out, err = provision("tls.renew", "-i", str(acme_proxy_at(tmp_path, port)), "--json", str(document),
                               timeout=60)
    print(f"tls.renew against a refused port: exit {code} in {time.monotonic() - started:.1f} s")
    assert code == 4, out + err
    assert f"box | unreachable | cannot connect to 127.0.0.1:{port}: connection refused" in out.splitlines(), out
    written = json.loads(document.read_text())
    assert (written["schema"], written["command"], written["exit_code"]) == (1, "tls.renew", 4)
    assert written["hosts"]["box"]["status"] == "unreachable"
    assert "Traceback" not in out + err

    silent = Silent()
    try:
        code, out, after = interrupted_once_it_waits(silent, "tls.renew", "-i", str(acme_proxy_at(tmp_path, silent.port)))
    finally:
        silent.close()
    print(f"tls.renew: exit {code} {after:.1f} s after Ctrl-C")
    assert code == 130, out[-3000:]
    assert "INTERRUPTED" in out and "RECAP" in out and re.search(r"^box interrupted while connecting", out, re.M), out
    assert "Traceback" not in out
