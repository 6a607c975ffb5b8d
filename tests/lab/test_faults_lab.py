"""Faults in flight on the lab, as an operator meets them: another deploy holding the host lock, a
planned file changed between facts and apply, two deploys at once, a link cut mid-apply and kept
down, Ctrl-C, and a full disk under the proxy's config folder. Each is bounded in time."""
import os
import posixpath
import signal
import subprocess
import sys
import time

import pytest

from provision.apply import HOST_LOCK, LOCK_DIR
from provision.engine import APPLY_LOST, STALE
from provision.platforms import DEBIAN

from conftest import ROOT, get, invoke, recap, ssh

pytestmark = pytest.mark.lab

ROUTES = DEBIAN.routes_path
PROXY = "http://10.123.0.10/"
MESSAGES = {"Hello world!", "Howdy world!"}


def start_deploy(*args, env=None):
    """`invoke deploy ARGS` in the background, in its own process group (ended by that group)."""
    return subprocess.Popen([sys.executable, "-m", "invoke", "deploy", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **(env or {})})


def finish(run, timeout):
    try:
        out, _ = run.communicate(timeout=timeout)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(10)
    return out


def mode_on_proxy(lab):
    return "balancer" if "balancer://" in ssh(lab, "proxy", f"cat {ROUTES}").stdout else "single"


def config_tree(lab):
    return ssh(lab, "proxy", "find /etc/apache2 -type f | sort | xargs sha256sum").stdout


# -- 1. concurrency ------------------------------------------------------------------------------

def test_deploy_waits_for_the_host_lock_then_applies(deployed):
    holder = subprocess.Popen(["ssh", "-F", str(deployed.ssh_config), "-o", "BatchMode=yes", "proxy",
                               f"flock {HOST_LOCK} sleep 15"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while ssh(deployed, "proxy", f"flock -n {HOST_LOCK} true", check=False).returncode == 0:
            assert time.monotonic() < deadline, "the lock was never taken"
            time.sleep(0.1)
        held = time.monotonic()
        proc = invoke("deploy", "--mode", "single", check=0, timeout=200)
        waited = time.monotonic() - held
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGTERM)
        holder.wait(20)
    print(f"deploy ended {waited:.1f} s after the lock was taken (held 15 s)")
    assert "proxy | waiting | waiting for another deploy on proxy" in proc.stdout, proc.stdout
    assert waited >= 13
    assert recap(proc.stdout)["proxy"]["changed"] > 0
    assert mode_on_proxy(deployed) == "single"
    assert ssh(deployed, "proxy", f"stat -c %a:%U {LOCK_DIR}").stdout.strip() == "700:root"


def test_a_planned_file_changed_after_the_facts_fails_the_host_and_changes_nothing(deployed):
    pending_before = ssh(deployed, "proxy", "ls /var/lib/provision/pending/").stdout
    tree_before = config_tree(deployed)
    routes_before = ssh(deployed, "proxy", f"cat {ROUTES}").stdout
    # The deploy runs with a hook that edits the routes file after the apply's lock, before its check.
    proc = subprocess.run([sys.executable, "-m", "tests.support.hook", f"echo '# someone else' >> {ROUTES}",
                           "deploy", "--mode", "single", "--limit", "proxy"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    failures = [line for line in proc.stdout.splitlines() if "| failed |" in line]
    assert failures == [f"proxy | failed | apply: {STALE}"], proc.stdout
    assert ssh(deployed, "proxy", f"cat {ROUTES}").stdout == routes_before + "# someone else\n"
    changed = [a for a, b in zip(tree_before.splitlines(), config_tree(deployed).splitlines()) if a != b]
    assert [line.split()[1] for line in changed] == [ROUTES]          # only the hook's own edit
    assert ssh(deployed, "proxy", "ls /var/lib/provision/pending/").stdout == pending_before
    assert {get(PROXY)[2] for _ in range(4)} == MESSAGES              # still balancing: not reloaded
    invoke("deploy", "--mode", "balancer", "--limit", "proxy", check=0)


def test_two_deploys_with_different_modes_at_once_end_in_one_wanted_mode(deployed, tmp_path):
    for round_ in range(3):
        # A drifted routes file: both runs plan to rewrite it, so they really race for it.
        ssh(deployed, "proxy", f"echo '# drift {round_}' >> {ROUTES}")
        runs = {mode: start_deploy("--mode", mode) for mode in ("single", "balancer")}
        outs = {mode: finish(run, 300) for mode, run in runs.items()}
        codes = {mode: run.returncode for mode, run in runs.items()}
        final = mode_on_proxy(deployed)
        other = "balancer" if final == "single" else "single"
        print(f"round {round_}: exits {codes}, proxy in {final} mode")
        assert codes[final] == 0, outs[final]
        assert codes[other] == 0 or f"proxy | failed | apply: {STALE}" in outs[other], outs[other]
        assert ssh(deployed, "proxy", "apache2ctl configtest", check=False).returncode == 0
        verify = invoke("verify", "--limit", "proxy", "--mode", final)
        assert verify.returncode == 0, verify.stdout[-3000:]
    invoke("deploy", "--mode", "balancer", check=0)


# -- 2 and 3. a link lost mid-apply, and Ctrl-C, on fresh hosts ----------------------------------

def wait_for_apply(lab, host, timeout=60):
    """Until an apply script runs on host (its record exists)."""
    deadline = time.monotonic() + timeout
    while not ssh(lab, host, "ls /var/lib/provision/runs/ 2>/dev/null", check=False).stdout.strip():
        assert time.monotonic() < deadline, f"no apply started on {host}"
        time.sleep(0.2)


def test_a_link_cut_mid_apply_fails_that_host_in_bounded_time_and_the_rest_converge(lab):
    from provision.lab import api, network
    api.reset(log=lambda m: None)
    link = network.host_link("web1")
    run = start_deploy()
    try:
        wait_for_apply(lab, "web1")
        subprocess.run(["ip", "link", "set", link, "down"], check=True)
        cut = time.monotonic()
        out = finish(run, 200)
        took = time.monotonic() - cut
    finally:
        subprocess.run(["ip", "link", "set", link, "up"], check=True)
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    print(f"deploy ended {took:.1f} s after web1's link was cut")
    assert took < 90, out
    assert f"web1 | unreachable | {APPLY_LOST}" in out, out
    counts = recap(out)
    assert counts["web1"]["unreachable"] == 1
    # the proxy prepared (Apache installed) but does not switch to a backend that did not converge
    assert counts["proxy"]["failed"] == counts["proxy"]["unreachable"] == 0 and counts["proxy"]["changed"] > 0
    assert counts["proxy"]["skipped"] > 0 and "not switched: web1 unreachable" in out, out
    assert counts["web2"]["failed"] == counts["web2"]["unreachable"] == 0
    assert "proxy | smoke | GET" not in out
    started = time.monotonic()
    again = invoke("deploy", check=0, timeout=400)
    print(f"the second deploy took {time.monotonic() - started:.1f} s")
    assert "web1 | earlier | an earlier apply lost its connection and ran on: exit" in again.stdout, again.stdout
    assert recap(again.stdout)["web1"]["failed"] == 0
    assert "proxy | smoke | GET" in again.stdout       # switched, now that web1 converged


def test_ctrl_c_names_the_hosts_mid_apply_exits_130_and_a_next_deploy_converges(lab):
    from provision.lab import api
    api.reset(log=lambda m: None)
    # Ctrl-C once a host's apply has started (its -vv progress line says so), not after a fixed
    # time: on a busy machine three seconds could still be the interpreter's start-up.
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "deploy", "-vv"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    try:
        started = time.monotonic()
        for line in proc.stdout:
            lines.append(line)
            if " | progress | applying step " in line or time.monotonic() - started > 120:
                break
        assert any(" | progress | applying step " in line for line in lines), "".join(lines)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines) + rest
    assert proc.returncode == 130, out + err
    last = out.strip().splitlines()[-1]
    print(last)
    assert last.startswith("mid-apply: ") and "finish on the host" in last, out
    named = last[len("mid-apply: "):].split(":")[0].split(", ")
    assert named and set(named) <= {"proxy", "web1", "web2"}, last
    assert "INTERRUPTED" in out and "RECAP" in out
    again = invoke("deploy", check=0, timeout=400)
    for host in named:          # each one's apply ran on without its connection, and says so
        assert f"{host} | earlier | an earlier apply lost its connection and ran on: exit" in again.stdout
    assert all(c["failed"] == c["unreachable"] == 0 for c in recap(again.stdout).values())
    assert invoke("deploy").stdout.count("nothing to change") == 3


# -- 4. a full disk ---------------------------------------------------------------------------------

def test_a_full_config_folder_fails_the_host_leaves_no_temp_file_and_the_site_answers(deployed):
    folder = posixpath.dirname(ROUTES)
    keep = "/run/provision-test-full"
    ssh(deployed, "proxy", f"rm -rf {keep} && cp -a {folder} {keep} && mount -t tmpfs -o size=64k tmpfs {folder} "
                           f"&& cp -a {keep}/. {folder}/ && {{ cat /dev/zero > {folder}/.fill 2>/dev/null; true; }}")
    try:
        names = ssh(deployed, "proxy", f"ls -A {folder}").stdout.split()
        proc = invoke("deploy", "--mode", "single", "--limit", "proxy", check=2)
        assert "No space left on device" in proc.stdout, proc.stdout
        assert recap(proc.stdout)["proxy"]["failed"] == 1
        assert ssh(deployed, "proxy", f"ls -A {folder}").stdout.split() == names      # no temp file left
        assert {get(PROXY)[2] for _ in range(4)} == MESSAGES
    finally:
        ssh(deployed, "proxy", f"umount {folder}; rm -rf {keep}", check=False)
    assert mode_on_proxy(deployed) == "balancer"
