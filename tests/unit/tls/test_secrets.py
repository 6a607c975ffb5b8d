"""Secrets never reach output: a secret file's content is never fetched nor diffed, and objects
holding the sudo password or TLS material hide them in their repr (security review, item 1)."""
import io
import json
from pathlib import Path

import pytest

from provision import engine, report, tls
from provision.engine import Options, StepResult
from provision.facts import Facts, FileState
from provision.inventory import load
from provision.platforms import DEBIAN
from provision.resources import File
from provision.roles import proxy
from provision.transport import Result

ROOT = Path(__file__).resolve().parents[3]


class RecordingConnection:
    """Stands in for a HostConnection: records every script, answers with what the host holds."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.scripts = files, []

    def run_script(self, script, timeout=0):
        import base64
        import re
        self.scripts.append(script)
        out = []
        for i, path in re.findall(r"echo '@@@ (\d+)'; base64 < (\S+)", script):
            out += [f"@@@ {i}", base64.b64encode(self.files[path]).decode()]
        return Result(0, "\n".join(out) + "\n", "")


@pytest.fixture
def tls_inventory(tmp_path):
    text = (ROOT / "inventory/lab-tls.yml").read_text().replace("../.lab/ssh_config", "ssh_config")
    (tmp_path / "ssh_config").write_text("")
    (tmp_path / "lab-tls.yml").write_text(text)
    return load(tmp_path / "lab-tls.yml")


def key_lines(pem: bytes) -> list[str]:
    return [line for line in pem.decode().splitlines() if line.strip()]


def test_secret_file_is_never_fetched_and_its_diff_shows_only_size(tls_inventory):
    options = Options(check=True, diff=True)
    options.tls = tls.prepare(tls_inventory, tls_inventory.group("proxies"), save=False)
    old_key = tls._key_pem(tls._new_key())
    host = tls_inventory.hosts["proxy"]
    resources = proxy.resources(host, DEBIAN, tls_inventory, options)
    _, key_path = proxy.tls_paths(DEBIAN)
    held = {r.path: b"old content\n" for r in resources if isinstance(r, File)}
    held[key_path] = old_key
    facts = Facts(os={"ID": "debian"}, platform=DEBIAN,
                  files={p: FileState("file", "600", "root", "root", "0" * 64) for p in held})
    changes = [r.plan(facts) for r in resources]
    conn = RecordingConnection(held)
    diffs = engine.fetch_diffs(conn, changes)
    assert key_path not in "".join(conn.scripts)            # the old key is never read
    new_key = options.tls["proxy"].key
    label = f"tls key {key_path}"
    assert diffs[label] == f"{key_path}: (secret: {len(new_key)} bytes, sha256 changed)\n"
    assert "old content" in diffs[f"file {DEBIAN.vhost_path}"]      # ordinary files still diff

    # The screen and --json carry the diffs: neither holds a line of either key.
    screen = io.StringIO()
    reporter = report.Reporter(screen)
    result = engine.HostResult("proxy")
    for c in changes:
        step = StepResult(c.label, "changed", c.reason, diff=diffs.get(c.label, ""))
        result.steps.append(step)
        reporter.step("proxy", step)
    text = screen.getvalue() + report.to_json([result])
    assert "PRIVATE KEY" not in text and "(secret:" in text
    for line in key_lines(old_key)[1:-1] + key_lines(new_key)[1:-1]:
        assert line not in text


def test_secret_mode_fix_shows_no_content():
    f = File("/etc/k", b"secret bytes", mode="600", secret=True)
    import hashlib
    have = FileState("file", "644", "root", "root", hashlib.sha256(b"secret bytes").hexdigest())
    change = f.plan(Facts(os={}, platform=DEBIAN, files={"/etc/k": have}))
    assert change.script == "chmod 600 /etc/k" and change.new_content is None


def test_reprs_hide_the_sudo_password_and_tls_material(tls_inventory):
    options = Options(sudo_password="hunter2-sudo")
    options.tls = tls.prepare(tls_inventory, tls_inventory.group("proxies"), save=False)
    material = options.tls["proxy"]
    key_body = key_lines(material.key)[1]
    for shown in (repr(options), str(options), repr(material), repr(options.tls)):
        assert "hunter2-sudo" not in shown and key_body not in shown and "PRIVATE KEY" not in shown
    key_file = File("/etc/k", material.key, mode="600", secret=True)
    change = key_file.plan(Facts(os={}, platform=DEBIAN))
    assert key_body not in repr(key_file) and key_body not in repr(change)
    # The key travels only inside the apply script (stdin of `sh -s`), base64-encoded.
    assert "PRIVATE KEY" not in change.script
