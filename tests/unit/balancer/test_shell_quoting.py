"""Values reaching a remote shell are quoted (security review, item 3): the rollout's scripts,
run as root on the proxy, with an address crafted to inject a command."""
import os
import subprocess
from pathlib import Path

from provision.balancer import manager as balancer_manager
from provision import apply
from provision.balancer.members import answer_script
from provision.roles import backends

EVIL = "10.0.0.11;touch${IFS}INJECTED;"


def run_with_fake_curl(script: str, tmp_path: Path, page: str = "nonce=0123-abcd") -> list[str]:
    """Run a script locally with a `curl` that only records its arguments and prints `page`;
    returns the arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "page.html").write_text(page + "\n")
    (bin_dir / "curl").write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done >> "$CURL_LOG"\n'
                                  'cat "$PAGE"\n')
    (bin_dir / "curl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CURL_LOG": str(tmp_path / "curl.log"),
           "PAGE": str(tmp_path / "page.html")}
    subprocess.run(["sh", "-c", script], cwd=tmp_path, env=env, timeout=30, capture_output=True)
    return (tmp_path / "curl.log").read_text().splitlines()


def test_answer_script_passes_a_crafted_address_as_one_argument(tmp_path):
    url = f"http://{EVIL}:8080"
    args = run_with_fake_curl(answer_script([url + "/"], seconds=1), tmp_path)
    assert not (tmp_path / "INJECTED").exists()
    assert f"{url}/" in args


def test_drain_script_passes_a_crafted_address_as_data(tmp_path):
    url = f"http://{EVIL}:8080"
    page = f'<td><a href="/balancer-manager?b=mycluster&w={url}&nonce=0123-abcd">{url}</a></td>'
    args = run_with_fake_curl(balancer_manager.set_drain_script([url], True), tmp_path, page)
    assert not (tmp_path / "INJECTED").exists()
    assert any(a.startswith(f"w={url}&") for a in args)


def test_handler_records_and_restart_units_are_quoted():
    app = {"name": "x;reboot", "port": 8080, "message": "m"}
    handler = backends.handlers(type("H", (), {"apps": [app]})(), None)[backends.restart_handler(app)]
    assert "'provision-app-x;reboot.service'" in handler.script
    script = apply.build([], [handler], {}, set(), "/nonexistent")
    assert "rm -f '/var/lib/provision/pending/restart-provision-app-x;reboot.service'" in script
