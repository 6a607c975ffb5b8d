"""Apps of the user's own: the release ID, the pruning rule, the EnvironmentFile (no secret in any
repr), the release plan, marker dependencies for the target's Python, and the one-line
validation of every new app field."""
import hashlib
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from provision import appwheels, releases
from provision.apply import STATE_DIR, launcher
from provision.facts import Facts, FileState
from provision.inventory import InventoryError, load
from provision.platforms import DEBIAN
from provision.releases import Environment, Release
from provision.roles import backends

ROOT = Path(__file__).resolve().parents[3]
FLASKR = ROOT / "tests" / "fixtures" / "apps" / "flaskr"
SECRET = "s3cr3t-'quoted' $HOME `x` \\ end"


def house(*names):
    files = tuple(Path(f"/cache/{n}") for n in ("pip-26.3-py3-none-any.whl",) + names)
    return SimpleNamespace(key="app-k", files=files, digests=tuple(hashlib.sha256(f.name.encode()).hexdigest()
                                                                   for f in files),
                           installer=files[0], pins=tuple(n.split("-")[0] + "==" + n.split("-")[1] for n in names))


def release(environment=None, commands=("flask --app flaskr init-db",), wheels=("flask-3.1.3-py3-none-any.whl",),
            conf=b"workers = 2\n"):
    return Release("flaskr", "/opt/provision/apps/flaskr", "app-flaskr", "provision-app-flaskr.service",
                   "flaskr:create_app()", "/", "10.0.0.1:8090", 3, lambda facts: house(*wheels), conf,
                   environment or Environment((("A", "1"),), (("KEY", SECRET),)), commands,
                   "/var/lib/provision/apps/flaskr", "restart-provision-app-flaskr.service")


def facts(current=None, marker_sha="", python=(3, 11, 2)):
    files = {}
    if current:
        files["/opt/provision/apps/flaskr/current"] = FileState("link", target=current)
        files["/opt/provision/apps/flaskr/current/.provision-release"] = FileState("file", "644", "root", "root",
                                                                                   marker_sha)
    return Facts(os={}, platform=DEBIAN, arch="x86_64", python=python, files=files)


# -- release ID ----------------------------------------------------------------------------------

def test_same_input_same_id_and_a_second_plan_changes_nothing():
    first = release().plan(facts())
    rid, marker, _ = release().wanted(facts())
    assert first.changed and first.reason == f"release {rid} (was none)"
    again = release().plan(facts(f"releases/{rid}", hashlib.sha256(marker).hexdigest()))
    assert not again.changed and again.reason == f"release {rid} is current"
    assert len(rid) == 12 and int(rid, 16) >= 0


@pytest.mark.parametrize("other", [
    dict(environment=Environment((("A", "1"),), (("KEY", SECRET + "!"),))),     # a secret changed
    dict(environment=Environment((("A", "2"),), (("KEY", SECRET),))),
    dict(commands=()),
    dict(wheels=("flask-3.1.2-py3-none-any.whl",)),
    dict(conf=b"workers = 3\n"),
])
def test_any_change_gives_another_id(other):
    assert release(**other).wanted(facts())[0] != release().wanted(facts())[0]


def test_another_python_gives_another_id():
    assert release().wanted(facts(python=(3, 9, 2)))[0] != release().wanted(facts())[0]


def test_a_host_without_python_gets_the_release_its_python_will_run_then_keeps_it():
    # A minimal image (the VM lab's box): python3 comes with this run's packages step, so the
    # release is built for the python3 Debian 12 ships, checked first; once python3 is there,
    # the same release is current.
    bare = Facts(os={"ID": "debian", "VERSION_ID": "12"}, platform=DEBIAN, arch="x86_64", python=None)
    change = release().plan(bare)
    rid, marker, _ = release().wanted(bare)
    assert change.changed and change.reason == f"release {rid} (was none)"
    assert change.script.splitlines()[0].startswith(
        "python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || ")
    assert rid == release().wanted(facts(python=(3, 11, 2)))[0]
    assert "sys.version_info" not in release().plan(facts()).script
    unknown = Facts(os={"ID": "debian", "VERSION_ID": "14"}, platform=DEBIAN, arch="x86_64", python=None)
    assert release().plan(unknown).reason == "no python3 on the host"


def test_a_current_release_with_a_torn_marker_is_rebuilt():
    rid, _, _ = release().wanted(facts())
    change = release().plan(facts(f"releases/{rid}", "0" * 64))
    assert change.changed and change.reason == f"release {rid} (was {rid})"


def test_the_plan_uploads_every_wheel_and_satisfies_the_restart():
    change = release().plan(facts())
    assert [u[1] for u in change.uploads] == ["app-k/pip-26.3-py3-none-any.whl", "app-k/flask-3.1.3-py3-none-any.whl"]
    assert change.satisfies == ("restart-provision-app-flaskr.service",)


# -- the EnvironmentFile -------------------------------------------------------------------------

def test_environment_file_has_no_secret_in_any_repr():
    env = Environment.of({"env": {"A": "1"}, "secret_env": {"KEY": SECRET}}, "/var/lib/provision/apps/x")
    r = release(environment=env)
    change = r.plan(facts())
    for text in (repr(env), str(env), repr(r), repr(change), str(change)):
        assert SECRET not in text and "s3cr3t" not in text
    assert "KEY" in repr(env)
    assert b"s3cr3t" in env.render()      # only the file itself holds it


def test_environment_file_reads_the_same_in_sh_as_written(tmp_path):
    """systemd's EnvironmentFile and sh share the double-quote rules used (\\ " $ ` escaped)."""
    env = Environment((("PLAIN", "a b 'c'"),), (("KEY", SECRET),))
    path = tmp_path / "env"
    path.write_bytes(env.render())
    out = subprocess.run(["sh", "-c", f'set -a; . {path}; printf "%s\\n%s" "$PLAIN" "$KEY"'], capture_output=True,
                         text=True, env={"PATH": os.environ["PATH"]}).stdout
    assert out == "a b 'c'\n" + SECRET
    assert env.render().decode().splitlines()[1:] == ['PLAIN="a b \'c\'"', 'KEY="s3cr3t-\'quoted\' \\$HOME \\`x\\` \\\\ end"']


def test_data_dir_is_given_in_the_environment():
    env = Environment.of({"env": {"B": 2}}, "/var/lib/provision/apps/x")
    assert env.plain == (("B", "2"), ("PROVISION_DATA_DIR", "/var/lib/provision/apps/x"))


# -- pruning and the scripts -----------------------------------------------------------------------

def test_keep_ids_is_the_last_n_of_the_history():
    assert releases.keep_ids(["a", "b", "c", "d"], 3) == ["b", "c", "d"]
    assert releases.keep_ids(["a"], 3) == ["a"]
    assert releases.keep_ids(["a", "b"], 1) == ["b"]


def test_prune_script_keeps_the_last_n_of_the_history(tmp_path):
    for rid in "abcde":
        (tmp_path / "releases" / rid).mkdir(parents=True)
    (tmp_path / "history").write_text("a\nc\nb\ne\n")      # d: a failed or rolled-back release
    script = f"home={tmp_path}; hist=$home/history\n" + releases.prune_script(3)
    subprocess.run(["sh", "-ec", script], check=True)
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == ["b", "c", "e"]


def test_scripts_are_valid_sh():
    script = release().plan(facts()).script
    rollback = releases.rollback_script("x", "/opt/x", "app-x", "u.service", "http://10.0.0.1:1/", "/")
    for text in (script, rollback):
        assert subprocess.run(["sh", "-n"], input=text, text=True, capture_output=True).returncode == 0
    assert SECRET not in script


# -- dependencies for the target ------------------------------------------------------------------

def make_wheel(folder: Path, name: str, version: str, requires=(), tag="py3-none-any") -> Path:
    path = folder / f"{name}-{version}-{tag}.whl"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}-{version}.dist-info/METADATA", meta)
    return path


def test_marker_dependencies_are_found_for_the_targets_python(tmp_path):
    wheels = [make_wheel(tmp_path, "flask", "3.1.3", ["click>=8.1.3", "importlib-metadata>=3.6; python_version < '3.10'",
                                                     "asgiref>=3.2; extra == 'async'"]),
              make_wheel(tmp_path, "click", "8.1.8")]
    py39 = appwheels.target_environment((3, 9, 2), "x86_64")
    py311 = appwheels.target_environment((3, 11, 2), "x86_64")
    assert appwheels.missing_for_target(wheels, ["flask==3.1.3"], py39) == ["importlib-metadata>=3.6"]
    assert appwheels.missing_for_target(wheels, ["flask==3.1.3"], py311) == []
    assert appwheels.missing_for_target(wheels, ["flask[async]==3.1.3"], py311) == ["asgiref>=3.2"]


def test_a_wheel_of_the_wrong_version_counts_as_missing(tmp_path):
    wheels = [make_wheel(tmp_path, "a", "1.0", ["b>=2"]), make_wheel(tmp_path, "b", "1.5")]
    assert appwheels.missing_for_target(wheels, ["a"], appwheels.target_environment((3, 11, 2), "x86_64")) == ["b>=2"]


@pytest.mark.parametrize("name,pure", [("six-1.17.0-py2.py3-none-any.whl", True),
                                       ("markupsafe-3.0.4-cp39-cp39-manylinux2014_x86_64.whl", False),
                                       ("backports.zoneinfo-0.2.1-cp311-cp311-linux_x86_64.whl", False),
                                       ("cffi-2.0.0-cp311-abi3-manylinux2014_x86_64.whl", False)])
def test_only_py_none_any_wheels_are_pure(name, pure):
    assert appwheels.is_pure(name) is pure


def test_folder_digest_skips_build_leftovers(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("x = 1\n")
    before = appwheels.folder_digest(tmp_path)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "a.pyc").write_bytes(b"\0")
    (tmp_path / "build").mkdir()
    assert appwheels.folder_digest(tmp_path) == before
    (tmp_path / "pkg" / "__init__.py").write_text("x = 2\n")
    assert appwheels.folder_digest(tmp_path) != before


def test_requirements_lines(tmp_path):
    path = tmp_path / "req.txt"
    path.write_text("# lock\nflask==3.1.3 \\\n    --hash=sha256:abc\n-i https://example.invalid\n\nclick==8.1.8  # why\n")
    assert appwheels.requirements_lines(path) == ["flask==3.1.3", "click==8.1.8"]


# -- validation of every new field --------------------------------------------------------------------

CODE = {"name": "a", "port": 8090, "package": "httpbin==0.10.4", "wsgi": "httpbin:app"}


def inventory(tmp_path, app):
    (tmp_path / "reqs.txt").write_text("flask==3.1.3\n")
    data = {"all": {"children": {"backends": {"hosts": {"h1": {"ansible_host": "10.0.0.1", "apps": [app]}}}}}}
    path = tmp_path / "apps.yml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("change,error", [
    ({"package": "httpbin>=0.10"}, "field 'apps[0].package' must pin one version, as 'NAME==VERSION' (a deploy must "
                                   "be reproducible), got 'httpbin>=0.10'"),
    ({"package": "httpbin==0.*"}, "field 'apps[0].package' must pin one version"),
    ({"package": "httpbin"}, "field 'apps[0].package' must pin one version"),
    ({"project": "nowhere"}, "field 'apps[0].project': an app takes one of message, project, package, not both "
                             "'package' and 'project'"),
    ({"message": "hi"}, "field 'apps[0].message': an app takes one of message, project, package, not both "
                        "'package' and 'message'"),
    ({"wsgi": "httpbin"}, "field 'apps[0].wsgi' must be 'module:callable' or 'module:factory()', got 'httpbin'"),
    ({"wsgi": "httpbin:app; rm -rf /"}, "field 'apps[0].wsgi' must be 'module:callable'"),
    ({"wsgi": None}, "field 'apps[0].wsgi' must be 'module:callable'"),
    ({"requirements": "missing.txt"}, "field 'apps[0].requirements': file"),
    ({"env": ["A=1"]}, "field 'apps[0].env' must be a mapping of NAME: value"),
    ({"env": {"1A": "x"}}, "field 'apps[0].env': '1A' is not an environment variable name"),
    ({"env": {"A": "two\nlines"}}, "field 'apps[0].env.A' must be one line without control characters got "),
    ({"env": {"A": True}}, "field 'apps[0].env.A' must be text or a number got True"),
    ({"env": {"PROVISION_DATA_DIR": "/x"}}, "field 'apps[0].env.PROVISION_DATA_DIR' is set by provision"),
    ({"secret_env": {"K": "top\nsecret"}}, "field 'apps[0].secret_env.K' must be one line without control characters "
                                           "(value not shown)"),
    ({"secret_env": {"K": ["top-secret"]}}, "field 'apps[0].secret_env.K' must be text or a number (value not shown)"),
    ({"env": {"K": "1"}, "secret_env": {"K": "2"}}, "field 'apps[0].secret_env.K' is also in 'env'"),
    ({"release_command": "flask db upgrade"}, "field 'apps[0].release_command' must be a list of commands"),
    ({"release_command": ["ok", "two\nlines"]}, "field 'apps[0].release_command[1]' must be one command on one line"),
    ({"data_dir": "yes"}, "field 'apps[0].data_dir' must be true or false, got 'yes'"),
    ({"files": [{"path": "c.py", "content": "x"}]}, "field 'apps[0].files' needs data_dir: true"),
    ({"data_dir": True, "files": [{"path": "../c.py", "content": "x"}]},
     "field 'apps[0].files[0].path' must be a file name in the data folder"),
    ({"data_dir": True, "files": [{"path": "c.py"}]}, "field 'apps[0].files[0]' must be a mapping with path, content"),
    ({"data_dir": True, "files": [{"path": "c.py", "content": 5, "secret": True}]},
     "field 'apps[0].files[0].content' must be text (value not shown)"),
    ({"data_dir": True, "files": [{"path": "c.py", "content": "x", "secret": "no"}]},
     "field 'apps[0].files[0].secret' must be true or false"),
    ({"data_dir": True, "files": [{"path": "c.py", "content": "x"}, {"path": "c.py", "content": "y"}]},
     "field 'apps[0].files[1].path': two files named 'c.py'"),
    ({"health": "health"}, "field 'apps[0].health' must be a URL path starting with / (such as /health), got 'health'"),
    ({"health": "/a b"}, "field 'apps[0].health' must be a URL path starting with /"),
    ({"workers": 0}, "field 'apps[0].workers' must be a whole number 1-64, got 0"),
    ({"workers": True}, "field 'apps[0].workers' must be a whole number 1-64, got True"),
    ({"threads": 257}, "field 'apps[0].threads' must be a whole number 1-256, got 257"),
    ({"timeout": "30"}, "field 'apps[0].timeout' must be a whole number 1-3600, got '30'"),
    ({"keep_releases": 21}, "field 'apps[0].keep_releases' must be a whole number 1-20, got 21"),
    ({"colour": "red"}, "field 'apps[0].colour' is unknown"),
])
def test_each_new_field_is_checked_in_one_line(tmp_path, change, error):
    path = inventory(tmp_path, {**CODE, **change})
    with pytest.raises(InventoryError) as exc:
        load(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: host 'h1': ") and error in message, message
    assert "\n" not in message and "top-secret" not in message and "top\nsecret" not in message


def test_wsgi_is_required_and_the_demo_takes_none_of_the_new_fields(tmp_path):
    with pytest.raises(InventoryError, match=r"field 'apps\[0\].wsgi' is missing"):
        load(inventory(tmp_path, {k: v for k, v in CODE.items() if k != "wsgi"}))
    with pytest.raises(InventoryError, match=r"field 'apps\[0\].workers' is for an app of your own"):
        load(inventory(tmp_path, {"name": "a", "port": 8090, "message": "hi", "workers": 2}))


def test_project_folder_is_relative_to_the_file_that_set_it(tmp_path):
    with pytest.raises(InventoryError, match=r"field 'apps\[0\].project': folder '.*nowhere' does not exist"):
        load(inventory(tmp_path, {**{k: v for k, v in CODE.items() if k != "package"}, "project": "nowhere"}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InventoryError, match=r"has no pyproject.toml or setup.py"):
        load(inventory(tmp_path, {**{k: v for k, v in CODE.items() if k != "package"}, "project": "empty"}))
    ok = {**{k: v for k, v in CODE.items() if k != "package"}, "project": str(FLASKR), "wsgi": "flaskr:create_app()",
          "data_dir": True, "files": [{"path": "config.py", "content": "SECRET_KEY = 'x'\n", "secret": True}],
          "env": {"A": 1}, "secret_env": {"B": "c"}, "release_command": ["flask --app flaskr init-db"],
          "health": "/hello", "workers": 3, "threads": 4, "timeout": 10, "keep_releases": 5, "requirements": "reqs.txt"}
    assert load(inventory(tmp_path, ok)).hosts["h1"].apps[0]["wsgi"] == "flaskr:create_app()"


def test_the_lab_apps_inventory_is_valid():
    inv = load(ROOT / "inventory" / "apps.yml")
    assert [a["name"] for a in inv.hosts["web1"].apps] == ["hello", "flaskr", "httpbin"]


# -- rollback, run for real on a folder with a fake systemctl and curl -----------------------------

def run_with_fakes(tmp_path, script, code, new):
    """Run a release script with a systemctl that only logs, a curl that answers ``code``, no sleep."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "systemctl").write_text('#!/bin/sh\necho "systemctl $*" >> "$LOG"\n')
    # curl answers ``code`` while current is the new release, else 200 (the previous one is healthy)
    (bin_dir / "curl").write_text('#!/bin/sh\ncase "$(readlink "$HOME_DIR/current")" in "$NEW") printf '
                                  f'{code} ;; *) printf 200 ;; esac\n')
    (bin_dir / "sleep").write_text("#!/bin/sh\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(tmp_path / "log"), "HOME_DIR": str(tmp_path),
           "NEW": new}
    return subprocess.run(["sh", "-ec", script], capture_output=True, text=True, env=env)


def run_rollback(tmp_path, code="200", new="releases/a"):
    return run_with_fakes(tmp_path, releases.rollback_script("x", str(tmp_path), "app-x", "u.service",
                                                             "http://10.0.0.1:1/", "/"), code, new)


def releases_on_disk(tmp_path, history, current):
    for rid in history:
        (tmp_path / "releases" / rid).mkdir(parents=True, exist_ok=True)
        (tmp_path / "releases" / rid / releases.MARKER).write_text(rid)
    (tmp_path / "history").write_text("".join(f"{r}\n" for r in history))
    (tmp_path / "current").symlink_to(f"releases/{current}")


def test_rollback_goes_back_one_release_at_a_time_while_one_is_kept(tmp_path):
    releases_on_disk(tmp_path, ["a", "b", "c"], "c")
    first = run_rollback(tmp_path)
    assert first.returncode == 0 and f"{releases.ROLLED_BACK}x c b" in first.stdout, first.stdout + first.stderr
    assert os.readlink(tmp_path / "current") == "releases/b" and (tmp_path / "history").read_text() == "a\nb\n"
    assert "systemctl restart u.service" in (tmp_path / "log").read_text()
    assert f"{releases.ROLLED_BACK}x b a" in run_rollback(tmp_path).stdout
    last = run_rollback(tmp_path)
    assert last.returncode == 1 and "check failed: rollback: x has no earlier release kept (current a)" in last.stdout
    assert os.readlink(tmp_path / "current") == "releases/a"


def test_rollback_skips_a_pruned_release_and_switches_forward_again_when_unhealthy(tmp_path):
    releases_on_disk(tmp_path, ["a", "b", "c"], "c")
    shutil.rmtree(tmp_path / "releases" / "b")
    bad = run_rollback(tmp_path, code="500")
    assert bad.returncode == 1 and "check failed: health: x: GET / answered 500, not 2xx/3xx, after the rollback " \
                                   "to a; switched forward again to c" in bad.stdout, bad.stdout
    assert os.readlink(tmp_path / "current") == "releases/c" and (tmp_path / "history").read_text() == "a\nb\nc\n"


def run_switch(tmp_path, rid, code="200", keep=3):
    return run_with_fakes(tmp_path, releases.shell_helpers(str(tmp_path), "app-x", "u.service", "http://10.0.0.1:1/h")
                          + releases.restart_and_check(rid, "/h", keep), code, f"releases/{rid}")


def test_a_switch_prunes_after_success_and_switches_back_when_unhealthy(tmp_path):
    releases_on_disk(tmp_path, ["a", "b", "c"], "c")
    (tmp_path / "releases" / "d").mkdir()
    ok = run_switch(tmp_path, "d", keep=3)
    assert ok.returncode == 0 and "release d is current (was c)" in ok.stdout, ok.stdout + ok.stderr
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == ["b", "c", "d"]     # a pruned
    (tmp_path / "releases" / "e").mkdir()
    bad = run_switch(tmp_path, "e", code="500")
    assert bad.returncode == 1 and "check failed: health: GET /h answered 500, not 2xx/3xx, after the restart of " \
                                   "release e; switched back to d" in bad.stdout, bad.stdout
    assert os.readlink(tmp_path / "current") == "releases/d" and (tmp_path / "history").read_text() == "a\nb\nc\nd\n"
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == ["b", "c", "d", "e"]    # no pruning


def test_a_first_release_that_fails_its_health_leaves_the_app_stopped(tmp_path):
    (tmp_path / "releases" / "a").mkdir(parents=True)
    bad = run_switch(tmp_path, "a", code="000")
    assert bad.returncode == 1 and "no earlier release, the app is stopped" in bad.stdout
    assert not os.path.lexists(tmp_path / "current") and "systemctl stop u.service" in (tmp_path / "log").read_text()


def test_a_fresh_host_gets_the_state_folder_from_the_apply_itself():
    """The launcher makes /var/lib/provision (755) before any step: planning it as created would
    make the apply's precondition (absent) fail on every fresh host."""
    inv = load(ROOT / "inventory" / "apps.yml")
    steps = backends.resources(inv.hosts["web1"], DEBIAN, inv, SimpleNamespace(app_wheels=lambda f: house()))
    state = next(s for s in steps if getattr(s, "path", None) == STATE_DIR)
    assert not state.plan(facts()).changed
    older = Facts(os={}, platform=DEBIAN, files={STATE_DIR: FileState("directory", "700", "root", "root")})
    assert state.plan(older).script == f"chmod 755 {STATE_DIR}\nchown root:root {STATE_DIR}"
    assert f"[ -d {STATE_DIR} ] || mkdir -m 755 -p {STATE_DIR}" in launcher("true\n")
