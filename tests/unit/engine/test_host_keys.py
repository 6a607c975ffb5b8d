"""--accept-new-host-keys remembers what it accepted (security review, item 5): the key goes to
known_hosts (created if needed), and from then on that host is checked strictly against it."""
from types import SimpleNamespace

import paramiko
import pytest

from provision.inventory import Host
from provision.transport import HostConnection, RecordNewHostKey


def test_accepted_key_is_written_and_then_strict(tmp_path):
    known = tmp_path / "new" / ".ssh" / "known_hosts"
    host_key = paramiko.RSAKey.generate(1024)
    client = paramiko.SSHClient()
    RecordNewHostKey(known).missing_host_key(client, "[10.0.0.11]:2222", host_key)
    assert known.read_text() == f"[10.0.0.11]:2222 ssh-rsa {host_key.get_base64()}\n"
    assert known.stat().st_mode & 0o777 == 0o600 and known.parent.stat().st_mode & 0o777 == 0o700
    # A second host is appended, even after a file that lacked its last newline.
    known.write_text(known.read_text().rstrip("\n"))
    other = paramiko.RSAKey.generate(1024)
    RecordNewHostKey(known).missing_host_key(paramiko.SSHClient(), "web2", other)
    later = paramiko.HostKeys(str(known))
    assert later.lookup("[10.0.0.11]:2222")["ssh-rsa"] == host_key
    assert later.lookup("web2")["ssh-rsa"] == other
    # The next run loads the file: the recorded key is known, a different one is a changed key.
    assert later.check("web2", other) and not later.check("web2", host_key)


@pytest.mark.parametrize("accept", [True, False])
def test_connection_records_to_the_first_known_hosts_file(tmp_path, accept):
    first, second = tmp_path / "inv_known_hosts", tmp_path / "other"
    conn = HostConnection(Host("web1", "10.0.0.11"), accept_new=accept)
    fake = SimpleNamespace(client=paramiko.SSHClient(), gateway=None)
    conn._check_host_keys(fake, {"userknownhostsfile": f"{first} {second}"})
    policy = fake.client._policy
    if accept:
        assert isinstance(policy, RecordNewHostKey) and policy.known_hosts == first
    else:
        assert isinstance(policy, paramiko.RejectPolicy)


def test_default_known_hosts_is_the_users(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    conn = HostConnection(Host("web1", "10.0.0.11"), accept_new=True)
    fake = SimpleNamespace(client=paramiko.SSHClient(), gateway=None)
    conn._check_host_keys(fake, {})
    assert fake.client._policy.known_hosts == tmp_path / ".ssh" / "known_hosts"
