"""Faults in flight, run for real with sh against temp folders: the host lock, the precondition,
temp files on failure, the detached apply and its orphan record, and what Ctrl-C prints."""
import hashlib
import io
import os
import signal
import subprocess
import time

import pytest

from provision import apply, facts as factlib
from tests.support.hook import after_the_lock
from provision.engine import HostResult, StepResult, lock_watch, planned_paths
from provision.facts import ABSENT, Facts, FileState
from provision.platforms import DEBIAN
from provision.report import Reporter
from provision.resources import Change, File


def local(script, tmp_path):
    """The script with the host paths moved under tmp_path (the lock folder: tmp_path/lock)."""
    for real, name in ((apply.HOST_LOCK, "lock/provision.lock"), (apply.LOCK_DIR, "lock"),
                       (factlib.RUN_DIR, "runs"), (factlib.PENDING_DIR, "pending")):
        script = script.replace(real, str(tmp_path / name))
    if os.getuid() != 0:        # the lock's folder and file are root's on a host; here, the tester's
        script = script.replace('!= 0:700 ]', f'!= {os.getuid()}:700 ]').replace('!= 0 ]', f'!= {os.getuid()} ]')
    return script


def sh(script, tmp_path, **kw):
    return subprocess.run(["sh", "-s"], input=local(script, tmp_path), capture_output=True, text=True,
                          cwd=tmp_path, timeout=60, **kw)


def launch(script, tmp_path, answer=apply.ACK):
    """Run the launcher as the transport does: stdin stays open until its exit line, then the
    answer (None: stdin just closes, as when the connection is gone)."""
    err = open(tmp_path / "stderr", "w+")
    proc = subprocess.Popen(["sh", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                            cwd=tmp_path)
    proc.stdin.write(local(apply.launcher(script), tmp_path))
    proc.stdin.flush()
    out = []
    for line in proc.stdout:
        out.append(line)
        if line.startswith(apply.EXIT_MARK):
            break
    if answer:
        proc.stdin.write(answer + "\n")
    proc.stdin.close()
    out += proc.stdout.readlines()
    proc.wait(30)
    err.seek(0)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(out), err.read())


def lock_path(tmp_path):
    """Where local() puts the host lock, its folder made as the lock script makes it."""
    (tmp_path / "lock").mkdir(mode=0o700, exist_ok=True)
    return tmp_path / "lock" / "provision.lock"


def hold_lock(tmp_path, seconds):
    """Another deploy: an exclusive flock on the host lock, as an operator's script would take it."""
    holder = subprocess.Popen(["flock", str(lock_path(tmp_path)), "sleep", str(seconds)])
    deadline = time.monotonic() + 5
    while subprocess.run(["flock", "-n", str(lock_path(tmp_path)), "true"]).returncode == 0:
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.02)
    return holder


def test_lock_waits_says_so_then_proceeds(tmp_path):
    holder = hold_lock(tmp_path, 1.5)
    try:
        res = sh(apply.locked("echo got it\n", shared=True, poll=1), tmp_path)
    finally:
        holder.wait(10)
    assert res.returncode == 0 and res.stdout == "got it\n", res
    assert apply.LOCK_WAITING in res.stderr


def test_lock_folder_is_made_root_only_and_the_lock_file_private(tmp_path):
    res = sh(apply.locked("echo locked\n"), tmp_path)
    assert (res.returncode, res.stdout, res.stderr) == (0, "locked\n", "")
    assert oct((tmp_path / "lock").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "lock" / "provision.lock").stat().st_mode & 0o777) == "0o600"
    again = sh(apply.locked("umask\n", shared=True), tmp_path)      # an existing lock is reused as it is
    assert again.returncode == 0 and again.stdout.strip() == "0022", again    # the script's own umask is back


def planted(tmp_path, how):
    """What a local user could leave where the lock goes; returns the path that must stay untouched."""
    folder, target = tmp_path / "lock", tmp_path / "etc-nologin"
    if how == "folder is a link":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "elsewhere")
        return tmp_path / "elsewhere"
    folder.mkdir(mode=0o700)
    lock = folder / "provision.lock"
    if how == "lock is a dangling link":
        lock.symlink_to(target)
        return target
    if how == "lock is a link to a file":
        target.write_text("x")
        target.chmod(0o644)
        lock.symlink_to(target)
        return target
    if how == "lock is a folder":
        lock.mkdir()
        return lock
    if how == "lock is not root's":
        lock.write_text("")
        os.chown(lock, 65534, 65534)
        return lock
    folder.chmod(0o755)         # "folder mode 755"
    return folder


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root")
@pytest.mark.parametrize("how", ["folder is a link", "lock is a dangling link", "lock is a link to a file",
                                 "lock is a folder", "lock is not root's", "folder mode 755"])
def test_a_planted_lock_path_is_refused_and_left_as_it_was(tmp_path, how):
    keep = planted(tmp_path, how)
    before = snapshot(tmp_path)
    res = sh(apply.locked("echo never\n"), tmp_path)
    assert res.returncode == 1 and "never" not in res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(apply.LOCK_REFUSED), res.stderr
    assert snapshot(tmp_path) == before, how         # nothing created, chmod-ed or chown-ed
    assert keep.exists() == (how != "lock is a dangling link")
    print(f"{how}: {lines[0]}")


def snapshot(folder):
    """Every path under folder with its kind, mode, owner and content (links not followed)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        found[str(path)] = (st.st_mode, st.st_uid, st.st_gid, content,
                            os.readlink(path) if path.is_symlink() else None)
    return found


def test_lock_gives_up_after_the_bound(tmp_path):
    holder = hold_lock(tmp_path, 10)
    try:
        started = time.monotonic()
        res = sh(apply.locked("echo never\n", wait=2, poll=1), tmp_path)
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(10)
    assert res.returncode == apply.LOCK_BUSY and "never" not in res.stdout
    assert res.stderr.count(apply.LOCK_WAITING) >= 2 and "gave up waiting 2 s" in res.stderr
    print(f"gave up after {took:.1f} s")


def test_shared_locks_do_not_wait_for_each_other(tmp_path):
    holder = subprocess.Popen(["flock", "-s", str(lock_path(tmp_path)), "sleep", "3"])
    time.sleep(0.3)
    try:
        res = sh(apply.locked("echo read\n", shared=True, poll=1), tmp_path)
    finally:
        holder.kill()
        holder.wait(10)
    assert res.returncode == 0 and apply.LOCK_WAITING not in res.stderr


def file_state(path):
    data = path.read_bytes()
    st = path.stat()
    import grp
    import pwd
    return FileState("file", oct(st.st_mode & 0o777)[2:], pwd.getpwuid(st.st_uid).pw_name,
                     grp.getgrgid(st.st_gid).gr_name, hashlib.sha256(data).hexdigest())


def me():
    import grp
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def write_step(target, content):
    owner, group = me()
    facts = Facts(os={}, platform=DEBIAN, files={str(target): file_state(target)} if target.exists() else {})
    return File(str(target), content, owner=owner, group=group), facts


def test_apply_runs_detached_streams_and_leaves_no_record(tmp_path):
    target = tmp_path / "site.conf"
    target.write_text("old\n")
    resource, facts = write_step(target, "new\n")
    changes = [resource.plan(facts)]
    script = apply.guarded(apply.build(changes, [], {}, set(), "/x"), planned_paths([resource], changes, facts))
    res = launch(script, tmp_path)
    assert res.returncode == 0, res
    assert target.read_text() == "new\n"
    out = apply.parse(res.stdout)
    assert out["0"].rc == 0 and out["0"].label == f"file {target}"
    assert apply.HEARTBEAT in res.stderr
    assert list((tmp_path / "runs").iterdir()) == []        # streamed to the end: no orphan record
    assert oct((tmp_path / "runs").stat().st_mode & 0o777) == "0o700"


def test_precondition_changes_nothing_when_a_planned_path_moved(tmp_path):
    target, other = tmp_path / "site.conf", tmp_path / "other.conf"
    target.write_text("old\n")
    resource, facts = write_step(target, "new\n")
    marker = tmp_path / "ran"
    changes = [resource.plan(facts), Change("b", "x", script=f"touch {marker}")]
    expect = {**planned_paths([resource], changes[:1], facts), str(other): ABSENT}
    script = after_the_lock(apply.guarded(apply.build(changes, [], {}, set(), "/x"), expect),
                            f"echo 'someone else' >> {target}")
    res = launch(script, tmp_path)
    assert res.returncode == apply.STALE
    assert target.read_text() == "old\nsomeone else\n" and not marker.exists()
    assert apply.stale_paths(res.stdout) == [str(target)]
    assert "0" not in apply.parse(res.stdout)


def test_precondition_passes_on_absent_and_link_paths(tmp_path):
    link = tmp_path / "link"
    link.symlink_to("/somewhere")
    expect = {str(tmp_path / "none"): ABSENT, str(link): FileState("link", target="/somewhere"),
              str(tmp_path): FileState("directory")}
    res = launch(apply.guarded("echo steps ran\n", expect), tmp_path)
    assert res.returncode == 0 and "steps ran" in res.stdout, res


def test_failed_step_removes_its_temp_file(tmp_path):
    target = tmp_path / "conf" / "proxy-routes.inc"
    target.parent.mkdir()
    target.write_text("old\n")
    facts = Facts(os={}, platform=DEBIAN, files={str(target): file_state(target)})
    change = File(str(target), "new\n", owner="no-such-user-here").plan(facts)   # chown fails after mktemp
    res = launch(apply.guarded(apply.build([change], [], {}, set(), "/x"), {}), tmp_path)
    assert res.returncode == 1
    assert apply.parse(res.stdout)["0"].rc == 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["proxy-routes.inc"]
    assert target.read_text() == "old\n"


def test_orphaned_apply_runs_on_and_the_next_facts_report_it(tmp_path):
    """The streamer dies (its connection dropped); the detached apply finishes, and its record
    tells the next run what it did."""
    changes = [Change("step one", "x", script="true"), Change("slow step", "y", script="sleep 1.5; false")]
    script = apply.launcher(apply.guarded(apply.build(changes, [], {}, set(), "/x"), {}))
    streamer = subprocess.Popen(["sh", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, cwd=tmp_path, start_new_session=True)
    streamer.stdin.write(local(script, tmp_path))
    streamer.stdin.close()
    for line in streamer.stdout:             # streamed until the slow step starts
        if line.startswith("@@@ step 1 slow step"):
            break
    os.killpg(streamer.pid, signal.SIGKILL)      # the streamer we started, by its process group
    streamer.wait(5)
    runs = tmp_path / "runs"
    deadline = time.monotonic() + 10
    while not list(runs.glob("*.rc")):
        assert time.monotonic() < deadline, "the detached apply did not finish"
        time.sleep(0.1)
    res = sh(factlib.script(factlib.FactRequest()), tmp_path)
    orphans = factlib.parse(res.stdout).orphans
    assert len(orphans) == 1 and orphans[0].status == "1"
    assert apply.summary(apply.parse(orphans[0].log)) == "1 step done, stopped in 'slow step' (exit 1)"
    # The next apply forgets the record once its own check passed.
    launch(apply.guarded("true\n", {}, forget_runs=[orphans[0].run]), tmp_path)
    assert list(runs.iterdir()) == []


def test_without_the_ack_the_record_stays_for_the_next_run(tmp_path):
    """The output was streamed, but nothing says it arrived (stdin closed, no answer)."""
    res = launch(apply.guarded(apply.build([Change("a", "x", script="true")], [], {}, set(), "/x"), {}),
                 tmp_path, answer=None)
    assert res.returncode == 0 and apply.parse(res.stdout)["0"].rc == 0
    orphans = factlib.parse(sh(factlib.script(factlib.FactRequest()), tmp_path).stdout).orphans
    assert [o.status for o in orphans] == ["0"]
    assert apply.summary(apply.parse(orphans[0].log)) == "1 step done"


def test_facts_skip_a_record_whose_apply_still_runs(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "a.out").write_text("@@@ step 0 x\n")
    (runs / "a.pid").write_text(f"{os.getpid()}\n")        # alive: waiting for the lock, say
    (runs / "b.out").write_text("@@@ step 0 y\n")
    (runs / "b.pid").write_text("999999999\n")              # gone without a status
    res = sh(factlib.script(factlib.FactRequest()), tmp_path)
    orphans = factlib.parse(res.stdout).orphans
    assert [(o.run, o.status) for o in orphans] == [("b", "killed")]
    assert apply.summary(apply.parse(orphans[0].log)) == "0 steps done, stopped in 'y' (unfinished)"


def test_planned_paths_are_those_the_changing_steps_read():
    a, b = File("/etc/a", "x"), File("/etc/b", "y")
    seen = FileState("file", "644", "root", "root", "0" * 64)
    facts = Facts(os={}, platform=DEBIAN, files={"/etc/a": seen})
    changes = [a.plan(facts), Change(b.label, "matches")]
    assert planned_paths([a, b], changes, facts) == {"/etc/a": seen}
    assert apply.expected_state(seen) == "file " + "0" * 64
    assert apply.expected_state(ABSENT) == "absent"


def test_lock_watch_reports_once():
    stream = io.StringIO()
    reporter = Reporter(stream=stream)
    watch = lock_watch("proxy", reporter)
    for line in [apply.LOCK_WAITING, apply.LOCK_WAITING, "other"]:
        watch(line)
    assert stream.getvalue().count("waiting for another deploy on proxy") == 1


def test_interrupted_prints_recap_then_mid_apply_hosts_then_nothing():
    stream = io.StringIO()
    reporter = Reporter(stream=stream)
    done, running = HostResult("proxy"), HostResult("web1")
    done.steps.append(StepResult("file /x", "changed"))
    reporter.track(done)
    reporter.track(running)
    reporter.applying("web1")
    reporter.interrupted()
    reporter.info("late line")
    reporter.failed("web1", "apply", "late failure")
    lines = stream.getvalue().strip().splitlines()
    assert "proxy ok=1 changed=1 failed=0 unreachable=0 skipped=0" in lines
    assert lines[-1].startswith("mid-apply: web1: their apply scripts finish on the host")
    assert "late" not in stream.getvalue()


def test_a_failed_step_undoes_its_validation_group_so_far(tmp_path):
    first, second = tmp_path / "vhost.conf", tmp_path / "routes.inc"
    first.write_text("old vhost\n")
    a, fa = write_step(first, "new vhost\n")
    owner, group = me()
    changes = [File(str(first), "new vhost\n", owner=owner, group=group, validate="apache").plan(fa),
               File(str(second), "routes\n", owner="no-such-user-here", validate="apache").plan(fa)]
    res = sh(apply.build(changes, [], {"apache": "true"}, set(), "/x"), tmp_path)
    assert res.returncode == 1
    assert first.read_text() == "old vhost\n" and not second.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".conf") or ".inc" in p.name) == \
        ["vhost.conf"]


def test_the_answer_is_read_whole_whatever_the_script_size(tmp_path):
    """The shell reads a big script from stdin in chunks: the launcher's `read` must still get
    the answer, never the script's own last lines."""
    for size in (100, 8150, 8192, 65500, 200_000):
        body = f"cat > /dev/null <<'EOF'\n{'x' * size}\nEOF\necho done\n"
        res = launch(apply.guarded(body, {}), tmp_path)
        assert res.returncode == 0 and "done" in res.stdout, (size, res)
        assert list((tmp_path / "runs").iterdir()) == [], size


def test_the_detached_script_runs_with_root_s_usual_umask(tmp_path):
    """The launcher's umask 077 keeps its records private; what the steps make must not inherit it
    (an app user must read its venv)."""
    res = launch(apply.guarded(f"mkdir {tmp_path}/made\n", {}), tmp_path)
    assert res.returncode == 0
    assert oct((tmp_path / "made").stat().st_mode & 0o777) == "0o755"
