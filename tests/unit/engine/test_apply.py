"""The apply script: steps in order, handler records, configtest rollback, parsing its output.
The script is also run for real here with sh, against a temp folder, so the shell is tested too."""
import subprocess

from provision import apply
from provision.apply import Handler
from provision.facts import Facts
from provision.platforms import DEBIAN
from provision.resources import Change, File


def test_handlers_notified_pending_and_satisfied():
    known = {"reload": Handler("reload", "reload", "true"), "restart": Handler("restart", "restart", "true")}
    changed = Change("a", "x", script="true", notify=("reload",))
    unchanged = Change("b", "ok", notify=("restart",))
    assert [h.name for h in apply.handlers_to_run([changed, unchanged], set(), known)] == ["reload"]
    assert [h.name for h in apply.handlers_to_run([unchanged], {"restart"}, known)] == ["restart"]
    start = Change("svc", "started", script="true", satisfies=("restart",))
    assert apply.handlers_to_run([start], {"restart"}, known) == []
    assert apply.handlers_to_run([unchanged], set(), known) == []


def run(script, tmp_path, pending_dir):
    script = script.replace(apply.PENDING_DIR, str(pending_dir))
    return subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, cwd=tmp_path)


def plan_file(path, content, validate=None, notify=()):
    return File(str(path), content, owner=_me(), group=_mygroup(), validate=validate, notify=notify).plan(
        Facts(os={}, platform=DEBIAN, files=_state(path)))


def _state(path):
    import hashlib
    import pwd
    import grp
    from provision.facts import FileState
    if not path.exists():
        return {}
    st = path.stat()
    return {str(path): FileState("file", oct(st.st_mode & 0o777)[2:], pwd.getpwuid(st.st_uid).pw_name,
                                 grp.getgrgid(st.st_gid).gr_name, hashlib.sha256(path.read_bytes()).hexdigest())}


def _me():
    import os
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


def _mygroup():
    import grp
    import os
    return grp.getgrgid(os.getgid()).gr_name


def test_script_applies_and_runs_handler_once(tmp_path):
    pending = tmp_path / "pending"
    target = tmp_path / "site.conf"
    changes = [plan_file(target, "new\n", validate="apache", notify=("reload",))]
    marker = tmp_path / "reloaded"
    handlers = [Handler("reload", "reload", f"echo x >> {marker}")]
    script = apply.build(changes, handlers, {"apache": "true"}, set(), "/nonexistent")
    res = run(script, tmp_path, pending)
    assert res.returncode == 0, res.stdout + res.stderr
    assert target.read_text() == "new\n"
    assert marker.read_text() == "x\n"
    assert not (pending / "reload").exists()
    out = apply.parse(res.stdout)
    assert out["0"].rc == 0 and out["validate-apache"].rc == 0 and out["handler-reload"].rc == 0


def test_failed_validation_restores_file_and_skips_handler(tmp_path):
    pending = tmp_path / "pending"
    target = tmp_path / "site.conf"
    target.write_text("old\n")
    changes = [plan_file(target, "broken\n", validate="apache", notify=("reload",))]
    marker = tmp_path / "reloaded"
    handlers = [Handler("reload", "reload", f"touch {marker}")]
    script = apply.build(changes, handlers, {"apache": "echo 'Syntax error on line 3'; false"}, set(), "/x")
    res = run(script, tmp_path, pending)
    assert res.returncode == apply.VALIDATION_FAILED
    assert target.read_text() == "old\n"
    assert not (tmp_path / "site.conf.provision-bak").exists()
    assert not marker.exists()
    assert not (pending / "reload").exists()
    out = apply.parse(res.stdout)
    assert out["validate-apache"].rc == 1 and "Syntax error on line 3" in out["validate-apache"].output


def test_failed_handler_stays_pending(tmp_path):
    pending = tmp_path / "pending"
    target = tmp_path / "site.conf"
    changes = [plan_file(target, "new\n", notify=("reload",))]
    script = apply.build(changes, [Handler("reload", "reload", "false")], {}, set(), "/x")
    res = run(script, tmp_path, pending)
    assert res.returncode == 1
    assert (pending / "reload").exists()        # the next run will reload


def test_step_failure_stops_later_steps(tmp_path):
    changes = [Change("a", "x", script="echo boom; exit 3"), Change("b", "y", script=f"touch {tmp_path}/b")]
    res = run(apply.build(changes, [], {}, set(), "/x"), tmp_path, tmp_path / "p")
    out = apply.parse(res.stdout)
    assert out["0"].rc == 3 and out["0"].output == "boom"
    assert "1" not in out and not (tmp_path / "b").exists()


def test_parse_interrupted_step():
    out = apply.parse("@@@ step 0\nGet:1 http://x\n")
    assert out["0"].rc is None and out["0"].output == "Get:1 http://x"


def test_fresh_start_clears_the_record_it_made_unnecessary(tmp_path):
    pending = tmp_path / "pending"
    unit = Change("unit", "created", script="true", notify=("restart",))
    start = Change("svc", "started", script="true", satisfies=("restart",))
    known = {"restart": Handler("restart", "restart", f"touch {tmp_path}/restarted")}
    handlers = apply.handlers_to_run([unit, start], set(), known)
    assert handlers == []
    res = run(apply.build([unit, start], handlers, {}, set(), "/x"), tmp_path, pending)
    assert res.returncode == 0
    assert not (pending / "restart").exists() and not (tmp_path / "restarted").exists()
