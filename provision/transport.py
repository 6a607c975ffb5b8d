"""The only module that touches the network: one SSH connection per host, through Fabric/paramiko.

It honours ssh_config (ProxyJump included), checks host keys against known_hosts (unknown keys
are refused unless accept_new is set), runs scripts through ``sh -s`` (with sudo for a non-root
user, answering its prompt without ever echoing the password) and counts connections and execs.

Waits on the network are bounded: every connection sends SSH keepalives every KEEPALIVE_INTERVAL s
and its TCP socket gives up on data unacknowledged for SILENCE s; an exec that hears nothing
for SILENCE s (scripts that run long print a heartbeat) raises ConnectionLost.
"""
from __future__ import annotations

import getpass
import logging
import os
import re
import select
import shlex
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .openssh import known_hosts_problem

# paramiko logs connection failures with tracebacks; we report them as one line instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

SUDO_PROMPT = "[provision sudo password]"
SUDO_READY = "@@@ sudo-ready"
KEEPALIVE_INTERVAL = 10     # s
KEEPALIVE_COUNT = 3
SILENCE = KEEPALIVE_INTERVAL * KEEPALIVE_COUNT      # s without a byte from the host: it is gone


class Unreachable(Exception):
    """The host could not be reached or authenticated; nothing ran on it."""


class ConnectionLost(Unreachable):
    """The connection died, or the host went silent, while a command ran."""


class RemoteTimeout(Exception):
    pass


@dataclass
class Result:
    """An exec's exit code and output."""
    rc: int
    stdout: str
    stderr: str


_known_hosts_lock = threading.Lock()


class RecordNewHostKey:
    """paramiko's missing-host-key policy for --accept-new-host-keys (OpenSSH's "accept-new"):
    a host seen for the first time is trusted once and its key appended to ``known_hosts``
    (created, with its folder, if needed). A known host whose key differs is still refused."""

    def __init__(self, known_hosts: Path):
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key):
        # hostname is "name" on port 22, "[name]:port" otherwise, as known_hosts writes it.
        client.get_host_keys().add(hostname, key.get_name(), key)
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with _known_hosts_lock:
            self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as f:
                if f.tell() and not self._ends_with_newline():
                    line = "\n" + line
                f.write(line)

    def _ends_with_newline(self) -> bool:
        with open(self.known_hosts, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"


def preload() -> None:
    """Import the SSH stack now, ahead of the first connection (worker processes forked after
    this share it instead of importing it each)."""
    # lazy: this is the one place that imports it ahead of a connection, on purpose
    import fabric  # noqa: F401
    import paramiko  # noqa: F401


class HostConnection:
    def __init__(self, host, accept_new: bool = False, sudo_password: str | None = None,
                 connect_timeout: float = 10.0, trace=None):
        self.host = host
        self.trace = trace          # called (host name, command, script) for each exec (-vvv)
        self.accept_new = accept_new or bool(host.vars.get("accept_new_host_keys"))
        # The inventory's ansible_become_password wins, as Ansible's host variables win over -K.
        self._sudo_password = host.become_password if getattr(host, "become_password", None) else sudo_password
        self.connect_timeout = connect_timeout
        self.connections = 0
        self.execs = 0
        self.uploads = 0            # files sent (put_all skips those already there)
        self._conn = None
        self._home = None
        self.address = None         # the address it connected to, once open

    # -- connection -------------------------------------------------------------------------------
    def open(self):
        if self._conn is not None:
            return self
        # lazy: paramiko costs ~100 ms of start-up, needed only once a host is reached
        import paramiko
        from fabric import Config, Connection
        h = self.host
        config = Config(runtime_ssh_path=h.ssh_config) if h.ssh_config else Config()
        lookup = config.base_ssh_config.lookup(h.name) if h.ssh_config else {}
        address = h.address if h.explicit_address else lookup.get("hostname", h.address)
        self.address = address
        # The handshake is bounded by connect_timeout too: a port that accepts TCP and then says
        # nothing (paramiko waits 15 s for a banner, 30 s for auth by default) is unreachable.
        # paramiko's own wait for the negotiation gets a second more, so that the banner's
        # timeout is what ends it (else it goes on to auth: "No existing session").
        kwargs = {"banner_timeout": self.connect_timeout, "auth_timeout": self.connect_timeout}
        if h.key:
            kwargs["key_filename"] = [h.key]
        conn = Connection(host=h.name if h.ssh_config else address, user=h.user, port=h.port,
                          config=config, connect_timeout=self.connect_timeout + 1, connect_kwargs=kwargs,
                          gateway=self._jump_hops(config))
        if h.ssh_config and address != conn.host:
            conn.host = address
        known: dict[str, str] = {}      # each hop's address -> its known_hosts files
        self._check_host_keys(conn, lookup, seen=known)
        try:
            conn.open()
        except BaseException as exc:
            for hop in _chain(conn):        # the hops already open
                hop.close()
            raise _unreachable(exc, address, conn.port, known, self.connect_timeout) from None
        self.connections += 1
        self._conn = conn
        self.user = conn.user
        for hop in _chain(conn):
            transport = hop.client.get_transport()
            transport.set_keepalive(KEEPALIVE_INTERVAL)
            _bound_tcp(transport.sock)
        return self

    def _jump_hops(self, config):
        """The inventory's ProxyJump (ansible_ssh_common_args/extra_args) as a chain of gateway
        Connections, the last hop first; None leaves ssh_config's ProxyJump to Fabric, False is
        "none". As OpenSSH does, hops are reached in the order written (Fabric 3 reverses them),
        and each hop's own settings (HostName, User, Port, key, known_hosts) come from ssh_config."""
        # lazy: fabric (and paramiko) cost ~90 ms of start-up, needed only once a host is reached
        from fabric import Connection
        jump = self.host.proxy_jump
        if not jump or jump.lower() == "none":
            return None if not jump else False
        gateway = None
        for hop in jump.split(","):
            gateway = Connection(hop, config=config.clone(), gateway=gateway, connect_timeout=self.connect_timeout)
        return gateway

    def _check_host_keys(self, conn, lookup, accept_new: bool | None = None, seen: dict | None = None) -> str:
        """Known hosts from ssh_config (or ~/.ssh/known_hosts) for this hop and every ProxyJump
        hop; unknown keys are refused unless accept_new, and an accepted key is written to the
        first known_hosts file, so that every later run is strict against it. Fabric itself
        would accept any key and remember none. The inventory's UserKnownHostsFile and
        StrictHostKeyChecking=accept-new apply to the host itself, as ssh's -o options do.
        ``seen`` gets each hop's address -> its known_hosts files (for the error messages)."""
        # lazy: paramiko costs ~100 ms of start-up, needed only once a host is reached
        import paramiko
        from fabric import Connection
        if accept_new is None:
            accept_new = self.accept_new or self.host.host_key_checking == "accept-new"
            if self.host.known_hosts:
                lookup = {**lookup, "userknownhostsfile": self.host.known_hosts}
        known = lookup.get("userknownhostsfile", "~/.ssh/known_hosts")
        files = [Path(os.path.expanduser(p)) for p in str(known).split()]
        problem = next(filter(None, (known_hosts_problem(str(p)) for p in files)), None)
        if problem:         # ssh_config's UserKnownHostsFile /dev/null, or ~/.ssh/known_hosts made a link to it
            raise Unreachable(f"{problem}; refusing to connect to {conn.host}")
        conn.client.set_missing_host_key_policy(
            RecordNewHostKey(files[0]) if accept_new else paramiko.RejectPolicy())
        for path in files:
            if path.is_file():
                conn.client.load_host_keys(str(path))
        if seen is not None:
            seen.setdefault(conn.host, str(known))
        if isinstance(conn.gateway, Connection):
            self._check_host_keys(conn.gateway, conn.gateway.ssh_config, self.accept_new, seen)
        return known

    def close(self):
        if self._conn is not None:
            for hop in _chain(self._conn):      # Fabric leaves the gateways open
                hop.close()
            self._conn = None
        self.__dict__.pop("_sftp_client", None)

    def _lost(self, why: str):
        """Drop the dead connection (a later use reconnects) and say so."""
        try:
            self.close()
        except Exception:       # closing a dead connection may fail any way; it is gone either way
            self._conn = None
        raise ConnectionLost(why)

    # -- exec ---------------------------------------------------------------------------------------
    def run_script(self, script: str, timeout: float = 900.0, on_line=None, silence: float = SILENCE,
                   ack: tuple[str, str] | None = None, become: bool = True, shown: str | None = None) -> Result:
        """Run a POSIX shell script as root (sudo for other users), fed through stdin;
        ``become=False`` runs it as the login user.
        ``on_line`` is called with each line of output (stdout or stderr) as it arrives.
        ``ack`` = (marker, answer): stdin stays open until a stdout line starts with marker, then
        the answer line is sent (the script reads it to learn that its output arrived).
        ``shown``: what the trace prints instead of the script (one with its secrets left out)."""
        # lazy: paramiko costs ~100 ms of start-up, needed only once a host is reached
        import paramiko
        self.open()
        become = become and self.user != "root"
        if become and getattr(self.host, "become", None) is False:
            return Result(1, "", f"ansible_become is false, but the login user {self.user!r} is not root and "
                                 "this needs root: set ansible_become: true (sudo), or log in as root")
        command = (f"sudo -S -p '{SUDO_PROMPT}' sh -c 'echo \"{SUDO_READY}\"; exec sh -s'"
                   if become else "sh -s")
        if self.trace is not None:
            self.trace(self.host.name, command, script if shown is None else shown)
        transport = self._conn.client.get_transport()
        try:
            chan = transport.open_session(timeout=self.connect_timeout)
            self.execs += 1
            chan.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self._lost(f"connection lost: {exc or type(exc).__name__}")
        out, err = bytearray(), bytearray()
        seen = {"out": 0, "err": 0}
        sent = not become
        waiting_ack = ack is not None

        def send_script():
            chan.sendall(script.encode())
            if not waiting_ack:
                chan.shutdown_write()
        if sent:
            send_script()
        prompts = 0
        deadline = time.monotonic() + timeout
        heard = time.monotonic()
        while True:
            now = time.monotonic()
            if now > deadline:
                chan.close()
                raise RemoteTimeout(f"no answer after {timeout:.0f} s")
            if not transport.is_active() or (chan.closed and not chan.exit_status_ready()):
                self._lost("connection lost")
            if now - heard > silence:
                self._lost(f"no answer for {silence:.0f} s")
            select.select([chan], [], [], 0.5)
            before = len(out) + len(err)
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            if len(out) + len(err) != before:
                heard = time.monotonic()
                if on_line is not None:
                    _feed(out, seen, "out", on_line)
                    _feed(err, seen, "err", on_line)
                if waiting_ack and sent and (b"\n" + ack[0].encode()) in b"\n" + out:
                    waiting_ack = False
                    chan.sendall((ack[1] + "\n").encode())
                    chan.shutdown_write()
            if not sent:
                if SUDO_PROMPT.encode() in err[-200:] and err.count(SUDO_PROMPT.encode()) > prompts:
                    prompts += 1
                    if prompts > 1 or self._sudo_password is None:
                        chan.close()
                        why = "wrong sudo password" if prompts > 1 else \
                            "sudo asks for a password: use -K (--ask-become-pass) or PROVISION_SUDO_PASSWORD"
                        return Result(1, "", why)
                    chan.sendall((self._sudo_password + "\n").encode())
                if (SUDO_READY + "\n").encode() in out:
                    out = out.replace((SUDO_READY + "\n").encode(), b"", 1)
                    seen["out"] = max(0, seen["out"] - len(SUDO_READY) - 1)
                    send_script()
                    sent = True
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
        rc = chan.recv_exit_status()
        chan.close()
        stderr = err.decode(errors="replace").replace(SUDO_PROMPT, "")
        return Result(rc, out.decode(errors="replace"), stderr)

    def upload_dir(self) -> str:
        """A per-user staging folder for uploads, in the remote home."""
        if self._home is None:
            self._home = self._sftp().normalize(".")
        return f"{self._home}/.provision-upload"

    def put_all(self, files) -> int:
        """Upload (local path, remote name, sha256) files into upload_dir(). A file already there
        is skipped only when its sha256 matches (one exec reads them all); returns the number sent.
        What is uploaded is checked again by root before use (resources.verified_copy)."""
        # lazy: paramiko costs ~100 ms of start-up, needed only once a host is reached
        import paramiko
        files = list(files)
        base = self.upload_dir()
        names = " ".join(shlex.quote(f"{base}/{remote}") for _, remote, _ in files)
        found = self.run_script(f"sha256sum {names} 2>/dev/null; exit 0", timeout=120).stdout
        have = {path: digest for digest, _, path in (line.partition("  ") for line in found.splitlines())}
        sent = 0
        for local, remote, digest in files:
            if have.get(f"{base}/{remote}") != digest:
                try:
                    self._put(local, remote)
                except (socket.timeout, EOFError, paramiko.SSHException) as exc:
                    self._lost(f"connection lost while uploading: {exc or type(exc).__name__}")
                sent += 1
        self.uploads += sent
        return sent

    def _put(self, local: str, remote_name: str):
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
        sftp.put(local, target + ".part")
        sftp.posix_rename(target + ".part", target)

    def _sftp(self):
        self.open()
        if not hasattr(self, "_sftp_client"):
            self.execs += 1
            self._sftp_client = self._conn.client.open_sftp()
            self._sftp_client.get_channel().settimeout(SILENCE)
        return self._sftp_client


def _unreachable(exc: BaseException, address: str, port, known: dict, timeout: float = 10.0) -> BaseException:
    """A failed connect (to the host or to one of its ProxyJump hops) as one line in plain words.
    ``known``: each hop's address -> its known_hosts files, the host's own first."""
    # lazy: paramiko costs ~100 ms of start-up, needed only once a host is reached
    import paramiko
    own = next(iter(known.values()), "known_hosts")
    where = f"{address}:{port or 22}"
    if isinstance(exc, paramiko.BadHostKeyException):
        return Unreachable(f"host key for {exc.hostname} has CHANGED (expected per "
                           f"{known.get(exc.hostname.strip('[]').split(']:')[0], own)}); refusing to connect")
    if isinstance(exc, paramiko.AuthenticationException):
        return Unreachable(f"{where} refused the login: no key or agent identity was accepted")
    if isinstance(exc, paramiko.SSHException):
        text = str(exc)
        unknown = re.search(r"Server '\[?([^' \]]+)", text) if "not found in known_hosts" in text else None
        if unknown:
            name = unknown.group(1)
            hop = "" if name == address else f" (a ProxyJump hop of {address})"
            return Unreachable(f"host key for {name}{hop} is unknown (not in {known.get(name, own)}); "
                               "add it, or pass --accept-new-host-keys")
        return Unreachable(_plain_ssh_failure(text, exc.__context__, where, timeout))
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        reasons = {os.strerror(e.errno) if getattr(e, "errno", None) else str(e) for e in exc.errors.values()}
        return Unreachable(f"cannot connect to {where}: {', '.join(sorted(reasons)).lower()}")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return Unreachable(f"no answer from {where} within {timeout:.0f} s (TCP connect timed out)")
    if isinstance(exc, socket.gaierror):
        return Unreachable(f"cannot resolve {address}: {exc.strerror or exc}")
    if isinstance(exc, OSError):
        return Unreachable(f"cannot connect to {where}: {(exc.strerror or str(exc)).lower()}")
    if isinstance(exc, EOFError):
        return Unreachable(f"{where} closed the connection during the SSH handshake")
    return exc


def _plain_ssh_failure(text: str, cause, where: str, timeout: float) -> str:
    """paramiko's handshake failures, in words an operator can act on. ``cause``: what paramiko
    caught while it waited for the banner (a timeout, or the peer closing)."""
    if "protocol banner" in text:
        if isinstance(cause, (socket.timeout, TimeoutError)):
            return f"no SSH banner from {where} within {timeout:.0f} s (it accepts TCP but does not answer as sshd)"
        return f"{where} closed the connection without an SSH banner"
    if "No existing session" in text or "not active" in text.lower():
        return f"{where} ended the SSH session during the handshake"
    if "No authentication methods available" in text:
        return f"{where}: no key or agent identity to log in with"
    if "Incompatible" in text or "no acceptable" in text.lower():
        return f"{where}: no SSH algorithm in common ({text})"
    return f"{where}: SSH handshake failed: {text}"


def _chain(conn) -> list:
    """The connection, then each of its ProxyJump gateways, the first hop last."""
    # lazy: fabric (and paramiko) cost ~90 ms of start-up, needed only once a host is reached
    from fabric import Connection
    hops = []
    while isinstance(conn, Connection):
        hops.append(conn)
        conn = conn.gateway
    return hops


def _feed(buf: bytearray, seen: dict, key: str, on_line):
    """Call on_line for each complete line of buf not seen yet."""
    end = buf.rfind(b"\n") + 1
    if end > seen[key]:
        for line in bytes(buf[seen[key]:end]).decode(errors="replace").splitlines():
            on_line(line)
        seen[key] = end


def _bound_tcp(sock):
    """TCP keepalive probes, and give up on data unacknowledged for SILENCE s (Linux
    TCP_USER_TIMEOUT), so that a silent peer ends the connection even between execs.
    A ProxyJump hop is a channel, not a socket: its first hop's socket carries the bound."""
    if not isinstance(sock, socket.socket):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_INTERVAL), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                        ("TCP_KEEPCNT", KEEPALIVE_COUNT), ("TCP_USER_TIMEOUT", SILENCE * 1000)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def local_user() -> str:
    return getpass.getuser()
