"""The peers' inputs and their reports, from our inventory (no lab)."""
from pathlib import Path

import yaml

from bench import peers
from provision.inventory import load

ROOT = Path(__file__).resolve().parents[3]


def spec():
    return peers.job(load(ROOT / "inventory/lab.yml"), Path("/lab/ssh_config"))


def test_job_from_the_lab_inventory():
    s = spec()
    assert s["proxies"] == [{"name": "proxy", "address": "10.123.0.10"}]
    assert [(b["name"], b["address"], [a["port"] for a in b["apps"]]) for b in s["backends"]] == [
        ("web1", "10.123.0.11", [8080]), ("web2", "10.123.0.12", [8081])]
    assert peers.messages(s) == {"Hello world!", "Howdy world!"}


def test_every_tool_gets_the_same_hosts_and_members(tmp_path):
    s = spec()
    peers.write_inputs(tmp_path, s)
    inv = yaml.safe_load((tmp_path / "inventory.yml").read_text())["all"]["children"]
    assert list(inv["backends"]["hosts"]) == ["web1", "web2"]
    assert inv["proxies"]["hosts"]["proxy"]["members"] == [{"address": "10.123.0.11", "port": 8080},
                                                            {"address": "10.123.0.12", "port": 8081}]
    assert "-F /lab/ssh_config" in (tmp_path / "ansible.cfg").read_text()
    scope = {}
    exec((tmp_path / "inventory.py").read_text(), scope)
    assert [h for h, _ in scope["backends"]] == ["web1", "web2"]
    assert scope["proxies"][0][1]["ssh_config_file"] == "/lab/ssh_config"


def test_changed_counts_from_each_tool():
    ansible = ("PLAY RECAP *********\n"
               "proxy                      : ok=7    changed=5    unreachable=0    failed=0    skipped=0\n"
               "web1                       : ok=6    changed=0    unreachable=0    failed=0    skipped=0\n")
    assert peers.changed_counts("ansible", ansible) == {"proxy": 5, "web1": 0}
    pyinfra = "--> Starting operation: Apache\n    [proxy] \x1b[32mSuccess\x1b[0m\n    [web1] No changes\n" \
              "    [proxy] No changes\n    [proxy] Success\n"
    assert peers.changed_counts("pyinfra", pyinfra) == {"proxy": 2, "web1": 0}
    assert peers.changed_counts("fabric", "proxy changed=3\nweb1 changed=0\n") == {"proxy": 3, "web1": 0}


class FakeApi:
    def __init__(self):
        self.resets = 0

    def reset(self, log=None):
        self.resets += 1


def test_measure_checks_cold_changes_curl_and_noop(tmp_path, monkeypatch):
    s = spec()
    runs = {"ansible": [{"proxy": 5, "web1": 4, "web2": 4}, {"proxy": 0, "web1": 0, "web2": 0}],
            "pyinfra": [{"proxy": 5, "web1": 4, "web2": 4}, {"proxy": 1, "web1": 0, "web2": 0}],
            "fabric": [{"proxy": 5, "web1": 4}, {"proxy": 0, "web1": 0, "web2": 0}]}

    def fake_run(tool, workdir, timeout=900):
        return peers.PeerRun(tool, 2.0, 0, runs[tool].pop(0), "out")
    monkeypatch.setattr(peers, "run", fake_run)
    monkeypatch.setattr(peers, "curl_answers", lambda address, n=4: ["Hello world!", "Howdy world!"] * 2)
    api = FakeApi()
    out = peers.measure(api, s, tmp_path, cold_runs=1, log=lambda m: None)
    assert api.resets == 3
    assert out["ansible"]["problems"] == [] and out["ansible"]["cold"]["median"] == 2.0
    assert out["ansible"]["no-op"]["runs"] == 1
    assert len(out["pyinfra"]["problems"]) == 1 and out["pyinfra"]["problems"][0].startswith("no-op:")
    assert len(out["fabric"]["problems"]) == 1 and out["fabric"]["problems"][0].startswith("cold 1:")


def test_a_peer_run_that_hangs_is_a_failed_run(tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "argv", lambda tool, workdir: ["sh", "-c", "echo 'web1 changed=1'; sleep 5"])
    r = peers.run("fabric", tmp_path, timeout=0.5)
    assert r.rc == -1 and r.wall < 4
    assert r.output.endswith("fabric: stopped after 0.5 s")
