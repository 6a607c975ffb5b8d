"""The report's plain lines (not a terminal), the per-host recap, merged phases and --json."""
import io
import json

from provision.engine import HostResult, StepResult
from provision.report import Reporter, merge, to_json


def lines(verbose=False, act=None):
    out = io.StringIO()
    act(Reporter(stream=out, verbose=True) if verbose else Reporter(stream=out))
    return out.getvalue().splitlines()


def test_steps_ok_hidden_unless_verbose_changed_and_failed_shown_with_detail():
    def act(r):
        r.step("web1", StepResult("file /x", "ok", "content, mode and owner match"))
        r.step("web1", StepResult("file /y", "changed", "content differs", diff="-a\n+b"))
        r.step("web1", StepResult("svc", "failed", "started", output="\n".join(f"l{i}" for i in range(30))))
    quiet = lines(act=act)
    assert quiet[:3] == ["web1 | changed | file /y: content differs", "    -a", "    +b"]
    assert quiet[3] == "web1 | failed | svc: started"
    assert quiet[4:] == [f"    l{i}" for i in range(5, 30)]           # the last 25 lines of its output
    assert lines(verbose=True, act=act) == ["web1 | ok | file /x: content, mode and owner match"] + quiet


def test_failed_step_with_a_diff_shows_both():
    out = lines(act=lambda r: r.step("h", StepResult("f", "failed", "x", output="boom", diff="+new")))
    assert out == ["h | failed | f: x", "    boom", "    +new"]


def test_host_lines_and_recap():
    results = [HostResult("proxy", [StepResult("a", "changed"), StepResult("b", "ok")]),
               HostResult("web1", unreachable="timed out"),
               HostResult("web2", [StepResult("c", "failed")])]

    def act(r):
        r.host_ok("web3", 12)
        r.failed("web2", "apply", "exit 1")
        r.unreachable("web1", "timed out")
        r.info("took 1.00 s")
        r.recap(results)
    assert lines(act=act) == [
        "web3 | ok | 12 steps, nothing to change", "web2 | failed | apply: exit 1", "web1 | unreachable | timed out",
        "took 1.00 s", "", "RECAP", "proxy ok=2 changed=1 failed=0 unreachable=0 skipped=0",
        "web1 ok=0 changed=0 failed=0 unreachable=1 skipped=0", "web2 ok=0 changed=0 failed=1 unreachable=0 skipped=0"]


def test_merge_keeps_first_seen_order_and_every_phase():
    a = {"web1": HostResult("web1", [StepResult("s1", "ok")]), "proxy": HostResult("proxy", error="e1", exit_code=2)}
    b = {"proxy": HostResult("proxy", [StepResult("s2", "changed")], unreachable="gone"),
         "web1": HostResult("web1", [StepResult("s3", "changed")], error="e2", exit_code=1)}
    merged = merge([a, b])
    assert [m.host for m in merged] == ["web1", "proxy"]
    web1, proxy = merged
    assert ([s.label for s in web1.steps], web1.error, web1.exit_code) == (["s1", "s3"], "e2", 1)
    assert ([s.label for s in proxy.steps], proxy.error, proxy.exit_code, proxy.unreachable) == (
        ["s2"], "e1", 2, "gone")


def test_json_has_counts_steps_and_extra():
    results = [HostResult("web1", [StepResult("f", "changed", "created", "out", "+x")], error=None)]
    data = json.loads(to_json(results, {"elapsed": 1.5}))
    assert data == {"schema": 1, "command": "deploy", "exit_code": 0,
                    "hosts": {"web1": {"status": "changed", "ok": 1, "changed": 1, "failed": 0, "unreachable": 0,
                                       "skipped": 0,
                                       "unreachable_reason": None, "error": None,
                                       "steps": [{"step": "f", "status": "changed", "reason": "created",
                                                  "output": "out", "diff": "+x"}]}},
                    "elapsed": 1.5}
    assert json.loads(to_json([])) == {"schema": 1, "command": "deploy", "exit_code": 0, "hosts": {}}


def test_json_is_indented_by_two():
    assert to_json([]) == '{\n  "schema": 1,\n  "command": "deploy",\n  "exit_code": 0,\n  "hosts": {}\n}'


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_lines_are_coloured_and_markup_in_names_is_shown_as_is(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Terminal()
    r = Reporter(stream=out)
    r.step("web[1]", StepResult("file [a]", "changed", "why", diff="+[b]"))
    r.step("web[1]", StepResult("odd", "weird", "status"))
    text = out.getvalue()
    assert "web[1]" in text and "file [a]: why" in text and "+[b]" in text
    assert "\x1b[33mchanged" in text            # yellow
    assert "\x1b[2m" in text                    # the detail is dim
    assert "\x1b[37mweird" in text              # an unknown status is white
    assert "\x1b[1mweb[1]" in text              # the host is bold


def test_on_a_terminal_numbers_and_paths_are_not_highlighted(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Terminal()
    r = Reporter(stream=out)
    r.host_ok("web1", 12)
    r.step("web1", StepResult("file /etc/x", "failed", "exit 1", output="/etc/x: 3 errors"))
    text = out.getvalue()
    assert "12 steps, nothing to change" in text and "file /etc/x: exit 1" in text and "/etc/x: 3 errors" in text


def test_exit_codes_failed_beats_unreachable_beats_ok():
    from provision.report import exit_code
    ok, failed = HostResult("a", [StepResult("s", "ok")]), HostResult("b", error="boom")
    gone = HostResult("c", unreachable="no SSH banner from 10.0.0.3:22 within 10 s")
    assert exit_code([ok]) == 0 and exit_code([ok, gone]) == 4 and exit_code([ok, gone, failed]) == 2


def test_progress_follows_the_apply_scripts_step_lines(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    r = Reporter(stream=Terminal())
    r.progress("web1", "connecting")
    r.progress("web2", "facts")
    r.applying("web1", [("0", "packages apache2"), ("3", "file /etc/x"), ("handler-reload", "reload apache2")])
    assert "applying (3 steps)" in r._progress_view().plain
    r.apply_line("web1", "@@@ step 3 file /etc/x")
    view = r._progress_view().plain.splitlines()
    assert view[0].startswith("web1  applying step 2/3: file /etc/x  ") and view[0].endswith(" s")
    assert view[1].startswith("web2  facts  ")
    r.apply_line("web1", "@@@ alive")            # the heartbeat moves nothing but the seconds
    r.apply_line("web1", "@@@ step handler-reload reload apache2")
    assert "web1  applying handler 3/3: reload apache2" in r._progress_view().plain
    r.progress("web1", None)
    r.progress("web2", None)
    assert r._progress_view().plain == "" and r._live is None


def test_progress_is_plain_lines_with_vv_and_silent_without():
    quiet = lines(act=lambda r: (r.progress("web1", "connecting"), r.progress("web1", None)))
    assert quiet == []
    out = io.StringIO()
    r = Reporter(stream=out, verbose=2)
    r.progress("web1", "connecting")
    r.applying("web1", [("0", "packages apache2")])
    r.apply_line("web1", "@@@ step 0 packages apache2")
    r.sent("web1", "sh -s", "echo hi")          # only with -vvv
    assert out.getvalue().splitlines() == ["web1 | progress | connecting", "web1 | progress | applying (1 steps)",
                                           "web1 | progress | applying step 1/1: packages apache2"]
    out = io.StringIO()
    Reporter(stream=out, verbose=3).sent("web1", "sh -s", "echo hi\necho there\n")
    assert out.getvalue().splitlines() == ["web1 | exec | sh -s", "    echo hi", "    echo there"]


def test_no_color_is_honoured(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("NO_COLOR", "1")
    out = Terminal()
    Reporter(stream=out).step("web1", StepResult("file /x", "changed", "why"))
    text = out.getvalue()       # NO_COLOR (no-color.org) takes the colours away; bold is not a colour
    assert "changed file /x: why" in text and "\x1b[33m" not in text and "\x1b[3" not in text


def test_an_interrupted_run_recaps_the_hosts_it_knows_and_where_the_others_were():
    out = io.StringIO()
    r = Reporter(stream=out)
    done = HostResult("web1", [StepResult("s", "ok")])
    r.track(done)
    r.progress("web2", "connecting")
    r.interrupted()
    assert out.getvalue().splitlines() == ["", "INTERRUPTED", "", "RECAP",
                                           "web1 ok=1 changed=0 failed=0 unreachable=0 skipped=0",
                                           "web2 interrupted while connecting", "mid-apply: none"]
