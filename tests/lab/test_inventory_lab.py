"""Bring your own Ansible inventory, on the lab: the README's example as an INI file and as an
inventory folder deploys, verifies and is a no-op the second time; a host listed by name only
resolves through .lab/ssh_config."""
import subprocess
import textwrap
import time

import pytest

from conftest import ROOT, add_sudo_user, invoke, recap, ssh

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


# -- the inventory's connection variables, honoured over real SSH ------------------------------------

DROP_IN = "/etc/ssh/sshd_config.d/zz-provision-only-via-proxy.conf"


def through_proxy(lab, host, command, check=True):
    """ssh to a lab host through proxy (ProxyJump), as the lab's ssh_config names both."""
    proc = subprocess.run(["ssh", "-F", str(lab.ssh_config), "-o", "BatchMode=yes", "-J", "proxy", host, command],
                          capture_output=True, text=True, timeout=120)
    assert not check or proc.returncode == 0, f"{host}: {command}: {proc.stdout}{proc.stderr}"
    return proc


def test_web2_reached_only_through_the_inventory_proxyjump(lab, tmp_path):
    path = tmp_path / "hosts.ini"
    ini = readme_ini(lab).replace(f"web2 ansible_host={lab.hosts['web2']}",
                                  f"web2 ansible_host={lab.hosts['web2']} ansible_ssh_common_args='-o ProxyJump=proxy'")
    assert "ProxyJump=proxy" in ini
    path.write_text(ini)
    control = ssh(lab, "web2", "echo $SSH_CLIENT").stdout.split()[0]       # this machine, as web2 sees it
    # web2's sshd refuses this machine from now on; a timer lifts it even if this test is killed.
    ssh(lab, "web2", f"echo 'DenyUsers *@{control}' > {DROP_IN} && systemctl reload ssh && "
                     f"systemd-run --on-active=900 sh -c 'rm -f {DROP_IN}; systemctl reload ssh'")
    try:
        # sshd re-executes on reload and refuses connections for a moment: wait for its answer
        refused = direct_answer(lab, lambda err: err is None or "Connection refused" not in err)
        assert "Permission denied" in (refused or "answered"), refused
        mark = through_proxy(lab, "web2", "date +%s.%N").stdout.strip()
        done = invoke("deploy", "-i", str(path), check=0)
        assert recap(done.stdout)["web2"]["unreachable"] == 0 and recap(done.stdout)["web2"]["failed"] == 0
        logins = through_proxy(lab, "web2", f"journalctl -t sshd -q --no-pager --since @{mark} "
                                            "| grep Accepted").stdout.splitlines()
        assert logins and all(f"from {lab.hosts['proxy']} " in line for line in logins), logins
        invoke("verify", "-i", str(path), check=0)      # verify's OpenSSH takes the same hop
        again = invoke("deploy", "-i", str(path), check=0)
        assert all(c["changed"] == 0 for c in recap(again.stdout).values()), again.stdout[-2000:]
    finally:
        through_proxy(lab, "web2", f"rm -f {DROP_IN} && systemctl reload ssh")
        assert direct_answer(lab, lambda err: err is None) is None


def direct_answer(lab, done, timeout=15):
    """ssh's complaint when web2 is reached directly (None: it answered), once done(complaint) holds."""
    deadline = time.monotonic() + timeout
    while True:
        proc = ssh(lab, "web2", "true", check=False)
        complaint = None if proc.returncode == 0 else proc.stderr
        if done(complaint) or time.monotonic() > deadline:
            return complaint
        time.sleep(0.3)


BECOME_USER = "ansibleuser"
BECOME_PASSWORD = "inv-Become-9d2e-pass"
ROUTES = "/etc/apache2/provision/proxy-routes.inc"


def test_become_with_the_password_given_in_the_inventory(lab, tmp_path):
    add_sudo_user(lab, BECOME_USER, BECOME_PASSWORD)
    become = (f"ansible_user={BECOME_USER}\nansible_become=true\nansible_become_method=sudo\n"
              f"ansible_become_user=root\n")
    path, wrong = tmp_path / "hosts.ini", tmp_path / "wrong.ini"
    path.write_text(readme_ini(lab) + become + f"ansible_become_password={BECOME_PASSWORD}\nlbmethod=bybusyness\n")
    wrong.write_text(readme_ini(lab) + become + "ansible_become_pass=not-the-Password-71\n")
    mark = ssh(lab, "proxy", "date +%s.%N").stdout.strip()
    env = {"PROVISION_SUDO_PASSWORD": ""}
    try:
        out_json = tmp_path / "run.json"
        done = invoke("deploy", "-i", str(path), "-v", "--diff", "--json", str(out_json), check=0, env=env)
        assert "lbmethod=bybusyness" in ssh(lab, "proxy", f"cat {ROUTES}").stdout      # root wrote it, via sudo
        sudo_log = ssh(lab, "proxy", f"journalctl -t sudo -q --no-pager --since @{mark}").stdout
        assert f"{BECOME_USER} : " in sudo_log and "USER=root" in sudo_log, sudo_log
        refused = invoke("deploy", "-i", str(wrong), env=env)
        assert refused.returncode == 2 and "wrong sudo password" in refused.stdout, refused.stdout[-2000:]
        shown = invoke("inventory", "-i", str(path), "--host", "proxy", check=0)
        journals = "".join(ssh(lab, h, "journalctl -q --no-pager -o cat").stdout for h in lab.hosts)
        everything = (done.stdout + done.stderr + out_json.read_text() + refused.stdout + refused.stderr
                      + shown.stdout + journals)
        assert BECOME_PASSWORD not in everything and "not-the-Password-71" not in everything
    finally:
        invoke("deploy", "-i", "inventory/lab.yml", check=0)
        for host in lab.hosts:
            ssh(lab, host, f"rm -f /etc/sudoers.d/{BECOME_USER}; userdel -r {BECOME_USER} 2>/dev/null; true")
