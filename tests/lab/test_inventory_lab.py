"""Bring your own Ansible inventory, on the lab: the README's example as an INI file and as an
inventory folder deploys, verifies and is a no-op the second time; a host listed by name only
resolves through .lab/ssh_config."""
import textwrap

import pytest

from conftest import ROOT, invoke, recap

pytestmark = pytest.mark.lab

APPS = {"web1": "[{'name': 'hello', 'port': 8080, 'message': 'Hello world!'}]",
        "web2": "[{'name': 'howdy', 'port': 8081, 'message': 'Howdy world!'}]"}


def readme_ini(lab, with_vars=True) -> str:
    """The README's inventory as INI, on the lab's addresses and ssh_config."""
    lines = ["[proxies]", f"proxy ansible_host={lab.hosts['proxy']}", "", "[backends]"]
    lines += [f"{h} ansible_host={lab.hosts[h]}" + (f" apps=\"{APPS[h]}\"" if with_vars or h != "web1" else "")
              for h in ("web1", "web2")]
    lines += ["", "[all:vars]", f"ssh_config={lab.ssh_config.resolve()}"]
    if with_vars:
        lines.append("proxy_mode=balancer")
    return "\n".join(lines) + "\n"


def run_twice_and_verify(path):
    first = invoke("deploy", "-i", str(path), check=0)
    assert set(recap(first.stdout)) == {"proxy", "web1", "web2"}
    invoke("verify", "-i", str(path), check=0)
    second = invoke("deploy", "-i", str(path), check=0)
    counts = recap(second.stdout)
    assert counts and all(c["changed"] == 0 and c["failed"] == 0 for c in counts.values()), second.stdout[-2000:]


def test_readme_inventory_as_ini_file(lab, tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_text(readme_ini(lab))
    run_twice_and_verify(path)


def test_readme_inventory_as_folder_with_group_vars_and_host_vars(lab, tmp_path):
    folder = tmp_path / "inventory"
    (folder / "group_vars").mkdir(parents=True)
    (folder / "host_vars" / "web1").mkdir(parents=True)
    (folder / "hosts").write_text(readme_ini(lab, with_vars=False))
    (folder / "group_vars" / "proxies.yml").write_text("proxy_mode: balancer\n")
    (folder / "host_vars" / "web1" / "main.yml").write_text(textwrap.dedent("""\
        apps:
        - {name: hello, port: 8080, message: Hello world!}
    """))
    run_twice_and_verify(folder)


def test_host_listed_by_name_only_resolves_through_lab_ssh_config(lab, tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(textwrap.dedent(f"""\
        all:
          vars:
            ssh_config: {lab.ssh_config.resolve()}
          children:
            proxies:
              hosts:
                proxy:
            backends:
              hosts:
                web1:
                  apps: [{{name: hello, port: 8080, message: Hello world!}}]
                web2:
                  apps: [{{name: howdy, port: 8081, message: Howdy world!}}]
    """))
    assert "ansible_host" not in path.read_text()
    done = invoke("deploy", "-i", str(path), check=0)
    assert set(recap(done.stdout)) == {"proxy", "web1", "web2"}
    assert f"GET http://{lab.hosts['proxy']}/" in done.stdout      # the smoke request used the real address
    invoke("verify", "-i", str(path), check=0)
    assert (ROOT / "inventory" / "lab.yml").exists()
