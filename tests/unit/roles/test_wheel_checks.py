"""Uploaded wheels are checked by sha256 as root, in a root-owned copy, before pip uses them, and
an upload is skipped only when the sha256 on the host matches (security review, item 7)."""
import hashlib
import subprocess

from provision.resources import verified_copy
from provision.transport import HostConnection, Result
from provision.inventory import Host


def run(script, cwd):
    return subprocess.run(["sh", "-ec", script], cwd=cwd, capture_output=True, text=True, timeout=30)


def test_verified_copy_accepts_the_right_wheels_and_refuses_a_swapped_one(tmp_path):
    upload, root = tmp_path / "upload", tmp_path / "root"
    upload.mkdir()
    root.mkdir()
    good = b"PK\x03\x04 the real wheel"
    (upload / "a.whl").write_bytes(good)
    files = [("a.whl", hashlib.sha256(good).hexdigest())]
    ok = run(verified_copy(str(upload), str(root), files), tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert (root / "a.whl").read_bytes() == good
    (root / "a.whl").unlink()
    swapped = b"PK\x03\x04 an evil wheel"[:len(good)].ljust(len(good), b"!")
    assert len(swapped) == len(good)
    (upload / "a.whl").write_bytes(swapped)
    bad = run(verified_copy(str(upload), str(root), files), tmp_path)
    assert bad.returncode != 0
    assert "a.whl: FAILED" in bad.stdout + bad.stderr
    assert "do not match their sha256" in bad.stderr


class FakeConnection(HostConnection):
    """Answers the sha256 exec with what the host holds; records the uploads."""

    def __init__(self, held):
        super().__init__(Host("web1", "10.0.0.11"))
        self.held, self.sent = held, []

    def upload_dir(self):
        return "/home/deploy/.provision-upload"

    def run_script(self, script, timeout=0):
        lines = [f"{digest}  {self.upload_dir()}/{name}" for name, digest in self.held.items()]
        return Result(0, "\n".join(lines) + "\n", "")

    def _put(self, local, remote_name):
        self.sent.append(remote_name)


def test_upload_skipped_only_when_the_sha256_matches():
    same, other = "1" * 64, "2" * 64
    conn = FakeConnection({"k/a.whl": same, "k/b.whl": "3" * 64})
    sent = conn.put_all([("/l/a.whl", "k/a.whl", same), ("/l/b.whl", "k/b.whl", other),
                         ("/l/c.whl", "k/c.whl", other)])
    assert conn.sent == ["k/b.whl", "k/c.whl"] and sent == 2
