"""The only module that touches the network: one SSH connection per host, through Fabric/paramiko.

It honours ssh_config (ProxyJump included), checks host keys against known_hosts (unknown keys
are refused unless accept_new is set), runs scripts through ``sh -s`` (with sudo for a non-root
user, answering its prompt without ever echoing the password) and counts connections and execs.
"""
from __future__ import annotations

import getpass
import logging
import os
import select
import socket
import time
from dataclasses import dataclass
from pathlib import Path

# paramiko logs connection failures with tracebacks; we report them as one line instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

SUDO_PROMPT = "[provision sudo password]"
SUDO_READY = "@@@ sudo-ready"


class Unreachable(Exception):
    """The host could not be reached or authenticated; nothing ran on it."""


class RemoteTimeout(Exception):
    pass


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str


class HostConnection:
    def __init__(self, host, accept_new: bool = False, sudo_password: str | None = None,
                 connect_timeout: float = 10.0):
        self.host = host
        self.accept_new = accept_new or bool(host.vars.get("accept_new_host_keys"))
        self._sudo_password = sudo_password
        self.connect_timeout = connect_timeout
        self.connections = 0
        self.execs = 0
        self._conn = None
        self._home = None
        self._open: _OpenExec | None = None

    # -- connection -------------------------------------------------------------------------------
    def open(self):
        if self._conn is not None:
            return self
        import paramiko
        from fabric import Config, Connection
        h = self.host
        config = Config(runtime_ssh_path=h.ssh_config) if h.ssh_config else Config()
        lookup = config.base_ssh_config.lookup(h.name) if h.ssh_config else {}
        address = h.address if h.explicit_address else lookup.get("hostname", h.address)
        kwargs = {}
        if h.key:
            kwargs["key_filename"] = [h.key]
        conn = Connection(host=h.name if h.ssh_config else address, user=h.user, port=h.port,
                          config=config, connect_timeout=self.connect_timeout, connect_kwargs=kwargs)
        if h.ssh_config and address != conn.host:
            conn.host = address
        known = self._check_host_keys(conn, lookup)
        try:
            conn.open()
        except paramiko.BadHostKeyException as exc:
            raise Unreachable(f"host key for {exc.hostname} has CHANGED (expected per {known}); "
                              "refusing to connect") from None
        except paramiko.SSHException as exc:
            msg = str(exc)
            if "not found in known_hosts" in msg:
                msg = (f"host key for {address} is unknown (not in {known}); "
                       "add it, or pass --accept-new-host-keys")
            raise Unreachable(msg) from None
        except (socket.timeout, TimeoutError):
            raise Unreachable(f"timed out connecting to {address}:{conn.port}") from None
        except OSError as exc:
            raise Unreachable(f"cannot connect to {address}:{conn.port}: {exc.strerror or exc}") from None
        self.connections += 1
        self._conn = conn
        self.user = conn.user
        return self

    def _check_host_keys(self, conn, lookup) -> str:
        """Known hosts from ssh_config (or ~/.ssh/known_hosts) for this hop and every ProxyJump
        hop; unknown keys are refused unless accept_new. Fabric itself would accept any."""
        import paramiko
        from fabric import Connection
        known = lookup.get("userknownhostsfile", "~/.ssh/known_hosts")
        conn.client.set_missing_host_key_policy(
            paramiko.AutoAddPolicy() if self.accept_new else paramiko.RejectPolicy())
        for path in str(known).split():
            path = Path(os.path.expanduser(path))
            if path.is_file():
                conn.client.load_host_keys(str(path))
        if isinstance(conn.gateway, Connection):
            self._check_host_keys(conn.gateway, conn.gateway.ssh_config)
        return known

    def close(self):
        self._open = None           # an open script sees end of input and exits
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- exec ---------------------------------------------------------------------------------------
    def run_script(self, script: str, timeout: float = 900.0, become: bool = True) -> Result:
        """Run a POSIX shell script as root (sudo for other users), fed through stdin.
        ``become=False`` runs it as the login user."""
        self.start_script(script, until=None, timeout=timeout, become=become)
        return self.finish_script("", timeout=timeout)

    def start_script(self, script: str, until: str | None, timeout: float = 900.0,
                     become: bool = True) -> str:
        """Start a script and keep its stdin open: returns its output up to the line ``until``
        (the shell then waits for more). ``finish_script`` sends the rest on the same exec, so
        a follow-up costs no extra round trip. With ``until=None`` nothing is read here."""
        self.finish_script("exit 0\n", timeout=timeout)
        self.open()
        become = become and self.user != "root"
        command = (f"sudo -S -p '{SUDO_PROMPT}' sh -c 'echo \"{SUDO_READY}\"; exec sh -s'"
                   if become else "sh -s")
        chan = self._conn.client.get_transport().open_session(timeout=self.connect_timeout)
        self.execs += 1
        chan.exec_command(command)
        self._open = _OpenExec(chan, become, self._sudo_password)
        self._open.send(script)
        if until is None:
            return ""
        return self._open.read_until((until + "\n").encode(), timeout)

    def finish_script(self, tail: str, timeout: float = 900.0) -> Result | None:
        """Send ``tail`` to the open script, close its stdin and wait for it (None: none open)."""
        running, self._open = self._open, None
        if running is None:
            return None
        running.send(tail)
        running.close_input()
        return running.wait(timeout)

    def upload_dir(self) -> str:
        """A per-user staging folder for uploads, in the remote home."""
        if self._home is None:
            self._home = self._sftp().normalize(".")
        return f"{self._home}/.provision-upload"

    def put(self, local: str, remote_name: str):
        sftp = self._sftp()
        base = self.upload_dir()
        path = base
        for part in [""] + remote_name.split("/")[:-1]:
            path = f"{path}/{part}" if part else path
            try:
                sftp.stat(path)
            except FileNotFoundError:
                sftp.mkdir(path, 0o700)
        target = f"{base}/{remote_name}"
        try:
            if sftp.stat(target).st_size == os.path.getsize(local):
                return
        except FileNotFoundError:
            pass
        sftp.put(local, target + ".part")
        sftp.posix_rename(target + ".part", target)

    def _sftp(self):
        self.open()
        if not hasattr(self, "_sftp_client"):
            self.execs += 1
            self._sftp_client = self._conn.client.open_sftp()
        return self._sftp_client


class _OpenExec:
    """One exec whose script is fed through stdin, possibly in parts. With sudo, the script is
    held back until sudo has accepted the password (answered once, never echoed)."""

    def __init__(self, chan, become: bool, sudo_password: str | None):
        self.chan = chan
        self.ready = not become
        self.password = sudo_password
        self.out, self.err = bytearray(), bytearray()
        self.queued = bytearray()
        self.input_done = False
        self.prompts = 0
        self.refused: str | None = None
        self.read = 0               # bytes of out already handed out by read_until

    def send(self, text: str):
        self.queued += text.encode()
        self._flush()

    def close_input(self):
        self.input_done = True
        self._flush()

    def _flush(self):
        if not self.ready or self.chan.closed:
            return
        try:
            if self.queued:
                self.chan.sendall(bytes(self.queued))
                self.queued.clear()
            if self.input_done:
                self.chan.shutdown_write()
        except OSError:         # the script already ended: wait() reports how
            pass

    def _pump(self, deadline: float):
        if time.monotonic() > deadline:
            self.chan.close()
            raise RemoteTimeout(f"no answer after {deadline - self.started:.0f} s")
        select.select([self.chan], [], [], 0.5)
        while self.chan.recv_ready():
            self.out += self.chan.recv(65536)
        while self.chan.recv_stderr_ready():
            self.err += self.chan.recv_stderr(65536)
        if self.ready:
            return
        if SUDO_PROMPT.encode() in self.err[-200:] and self.err.count(SUDO_PROMPT.encode()) > self.prompts:
            self.prompts += 1
            if self.prompts > 1 or self.password is None:
                self.refused = "wrong sudo password" if self.prompts > 1 else \
                    "sudo asks for a password: use --prompt-for-sudo-password or PROVISION_SUDO_PASSWORD"
                self.chan.close()
                return
            self.chan.sendall((self.password + "\n").encode())
        if (SUDO_READY + "\n").encode() in self.out:
            self.out = self.out.replace((SUDO_READY + "\n").encode(), b"", 1)
            self.ready = True
            self._flush()

    def _finished(self) -> bool:
        return self.refused is not None or (
            self.chan.exit_status_ready() and not self.chan.recv_ready() and not self.chan.recv_stderr_ready())

    def read_until(self, marker: bytes, timeout: float) -> str:
        self.started = time.monotonic()
        deadline = self.started + timeout
        while marker not in self.out[self.read:] and not self._finished():
            self._pump(deadline)
        end = self.out.find(marker, self.read)
        end = len(self.out) if end < 0 else end + len(marker)
        text, self.read = self.out[self.read:end], end
        return text.decode(errors="replace")

    def wait(self, timeout: float) -> Result:
        self.started = time.monotonic()
        deadline = self.started + timeout
        while not self._finished():
            self._pump(deadline)
        if self.refused is not None:
            return Result(1, "", self.refused)
        rc = self.chan.recv_exit_status()
        self.chan.close()
        stderr = self.err.decode(errors="replace").replace(SUDO_PROMPT, "")
        return Result(rc, self.out[self.read:].decode(errors="replace"), stderr)


def local_user() -> str:
    return getpass.getuser()
