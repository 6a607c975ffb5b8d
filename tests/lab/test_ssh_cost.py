"""The README's claim "a no-op costs 1 connection and 1 exec per host", on every lab host: from
the deploy's own counters, cross-checked with what each host's sshd logged."""
import json

import pytest

from conftest import invoke
from bench import speed as bench

pytestmark = pytest.mark.lab


def test_noop_costs_one_connection_and_one_exec_per_host(deployed, tmp_path):
    hosts = list(deployed.hosts)
    assert set(hosts) >= {"proxy", "web1", "web2"}
    out = tmp_path / "noop.json"

    def noop():
        proc = invoke("deploy", "-i", "inventory/lab.yml", "--mode", "balancer", "--json", str(out), check=0)
        return json.loads(out.read_text()), proc.stdout

    seen, (result, stdout) = bench.sshd_counts_during(deployed.ssh_config, hosts, noop)
    print({h: (result["ssh"].get(h), seen[h]) for h in hosts})
    assert bench.changed_hosts(result) == [], stdout
    one = {"connections": 1, "execs": 1}
    assert set(result["ssh"]) == set(hosts)
    assert {h: {k: result["ssh"][h][k] for k in one} for h in hosts} == {h: one for h in hosts}, \
        "the deploy's own counters"
    assert all(result["ssh"][h].get("uploads", 0) == 0 for h in hosts)
    assert seen == {h: one for h in hosts}, "sshd's journal on each host"
