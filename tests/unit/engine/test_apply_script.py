"""The apply script run for real by sh: its environment, rollback and commit order, the handler
records it forgets, and parse() on every shape of output. Public API only: build, parse."""
import subprocess

from provision import apply
from provision.apply import Handler
from provision.resources import Change


def run(script, tmp_path):
    pending = tmp_path / "pending"
    return subprocess.run(["sh", "-s"], input=script.replace(apply.PENDING_DIR, str(pending)),
                          capture_output=True, text=True, cwd=tmp_path)


def test_steps_see_the_exported_environment(tmp_path):
    step = Change("env", "x", script='echo "$LC_ALL|$DEBIAN_FRONTEND|$PROVISION_UPLOAD"')
    proc = run(apply.build([step], [], {}, set(), "/tmp/up load"), tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert apply.parse(proc.stdout)["0"].output == "C|noninteractive|/tmp/up load"


def group(tmp_path, validator):
    log = tmp_path / "log"
    changes = [Change(n, "x", script=f"echo do-{n} >> {log}", validate="apache", notify=("reload",),
                      rollback=f"echo undo-{n} >> {log}", commit=f"echo commit-{n} >> {log}") for n in "abc"]
    known = {"reload": Handler("reload", "reload", f"echo reload >> {log}")}
    script = apply.build(changes, apply.handlers_to_run(changes, set(), known), {"apache": validator}, set(), "/x")
    return run(script, tmp_path), log


def test_failed_validation_undoes_every_step_in_reverse_order(tmp_path):
    proc, log = group(tmp_path, "false")
    assert (proc.returncode, proc.stderr) == (apply.VALIDATION_FAILED, "")
    assert log.read_text().split() == ["do-a", "do-b", "do-c", "undo-c", "undo-b", "undo-a"]
    assert not (tmp_path / "pending" / "reload").exists()


def test_passed_validation_commits_every_step_in_order_then_reloads(tmp_path):
    proc, log = group(tmp_path, "true")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert log.read_text().split() == ["do-a", "do-b", "do-c", "commit-a", "commit-b", "commit-c", "reload"]


def test_failed_validation_without_rollbacks_is_clean(tmp_path):
    step = Change("a", "x", script="true", validate="apache")
    proc = run(apply.build([step], [], {"apache": "false"}, set(), "/x"), tmp_path)
    assert (proc.returncode, proc.stderr) == (apply.VALIDATION_FAILED, "")
    assert apply.parse(proc.stdout)["validate-apache"].rc == 1


def test_failed_validation_forgets_every_record_this_run_made(tmp_path):
    known = {n: Handler(n, n, "true") for n in ("one", "two", "three")}
    changes = [Change(n, "x", script="true", validate="apache", notify=(n,)) for n in known]
    (tmp_path / "pending").mkdir()
    (tmp_path / "pending" / "two").write_text("")
    script = apply.build(changes, apply.handlers_to_run(changes, {"two"}, known), {"apache": "false"}, {"two"}, "/x")
    proc = run(script, tmp_path)
    assert (proc.returncode, proc.stderr) == (apply.VALIDATION_FAILED, "")
    assert sorted(p.name for p in (tmp_path / "pending").iterdir()) == ["two"]


def test_fresh_starts_clear_every_record_they_made_unnecessary(tmp_path):
    (tmp_path / "pending").mkdir()
    for n in ("r1", "r2"):
        (tmp_path / "pending" / n).write_text("")
    starts = [Change(f"svc{n}", "started", script="true", satisfies=(n,)) for n in ("r1", "r2")]
    known = {n: Handler(n, n, f"touch {tmp_path}/{n}-ran") for n in ("r1", "r2")}
    handlers = apply.handlers_to_run(starts, {"r1", "r2"}, known)
    assert handlers == []
    proc = run(apply.build(starts, handlers, {}, {"r1", "r2"}, "/x"), tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert list((tmp_path / "pending").iterdir()) == []
    assert not list(tmp_path.glob("*-ran"))


def test_parse_every_shape():
    text = ("@@@ step 0\nline a\nline b\n@@@ done 0 0\n"
            "@@@ step 1\n@@@ done 1 7\n"
            "@@@ done nonsense\n"
            "@@@ done 9 0\n"
            "@@@ step 2\nstarted only\n"
            "@@@ step 3\nhalf\n")
    out = apply.parse(text)
    assert out == {
        "0": apply.StepOutcome("0", 0, "line a\nline b"),
        "1": apply.StepOutcome("1", 7, ""),
        "2": apply.StepOutcome("2", None, ""),
        "3": apply.StepOutcome("3", None, "half"),
    }


def test_parse_a_step_that_never_printed():
    assert apply.parse("@@@ step 0\n") == {"0": apply.StepOutcome("0", None, "")}


def test_parse_an_interrupted_step_keeps_every_line():
    assert apply.parse("@@@ step 4\nGet:1 a\nGet:2 b\n")["4"].output == "Get:1 a\nGet:2 b"
