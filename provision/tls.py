"""TLS material for the proxies, made on the control machine before planning.

tls: self-signed -- a small CA per inventory, kept beside it in ``.tls/<inventory stem>/ca/`` (never
pushed; its key never leaves this machine), signs one certificate per proxy for its names and
addresses, kept in ``.tls/<inventory stem>/hosts/``: no host name can collide with the CA's files.
The CA is constrained (pathlen 0, names limited to the proxies' names and addresses), so that its
key, if it leaked, could sign nothing else. The issued certificate is kept and reused: it is
re-issued only when missing, when the names changed, when it no longer matches its key or the CA,
or within RENEW_BEFORE of expiry.
tls: provided -- the certificate (chain) and key files the inventory names, checked to match.
tls: acme -- certificates from an ACME CA (RFC 8555) for the names the proxy serves. Where mod_md
runs the proxy gets them itself; on the control route (provision.acme_client) the account key and
each proxy's certificate and key are kept in ``.tls/<inventory stem>/acme/`` (0600), and the proxy
gets its own pair as with tls: provided. Only the store is here: no network.
"""
from __future__ import annotations

import datetime
import fcntl
import hashlib
import ipaddress
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from . import syntax
from .errors import UserError
from .sites.model import served_names, site_names

STORE = ".tls"
STORE_IGNORE = "# Written by provision: CA and proxy keys live here. Never commit them.\n*\n"
RENEW_BEFORE = datetime.timedelta(days=30)
CA_LIFETIME = datetime.timedelta(days=3650)
CERT_LIFETIME = datetime.timedelta(days=397)     # the CA/Browser Forum's cap for server certificates
ACME_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"     # Let's Encrypt, production
ACME_RENEW_WINDOW = "30d"
WINDOW_UNITS = {"d": 86400, "h": 3600, "s": 1}


class TLSError(UserError):
    """One line naming the host or file and what is wrong."""


@dataclass(frozen=True)
class Material:
    """A proxy's certificate and key, as made or read before planning."""
    cert: bytes         # PEM: the server certificate, then any chain
    key: bytes = field(repr=False)      # PEM: its private key (secret: never in a repr)
    trust: bytes        # PEM: what clients trust (our CA, or the provided chain's issuers)
    serial: int
    issued: bool = False    # made by this run

    @property
    def chained(self) -> bool:
        return self.cert.count(b"-----BEGIN CERTIFICATE-----") > 1


def mode(host) -> str:
    return host.vars.get("tls", "off")


def store_dir(inventory) -> Path:
    path = Path(inventory.path)
    return path.parent / STORE / path.stem


def ca_dir(inventory) -> Path:
    return store_dir(inventory) / "ca"


def hosts_dir(inventory) -> Path:
    return store_dir(inventory) / "hosts"


def ca_path(inventory) -> Path:
    return ca_dir(inventory) / "ca.crt"


def trust_path(host, inventory) -> Path | None:
    """The file a client trusts to check this proxy's certificate (None with tls: off, and with
    tls: acme from a CA in the system's trust store)."""
    if mode(host) == "self-signed":
        return ca_path(inventory)
    if mode(host) == "provided":
        return _local(inventory, host.vars["tls_cert"])
    if mode(host) == "acme" and host.vars.get("acme_root"):
        return _local(inventory, host.vars["acme_root"])
    return None


def names(host) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(DNS names, IP addresses) the certificate covers: the host's name, server_name, every
    site's names, tls_names, its address and private address. Names go in as A-labels; an
    inventory name that is no host name ('*', 'proxy one') is left out (the other names are
    checked when the inventory loads)."""
    dns, ips = [], []
    for value in [host.name, host.vars.get("server_name"), *site_names(host.vars),
                  *(host.vars.get("tls_names") or []),
                  host.address if host.explicit_address else None, host.vars.get("private_address")]:
        if not value:
            continue
        address = syntax.ip_address(str(value))
        if address is not None:
            ips.append(str(address))
            continue
        name = syntax.a_label(str(value))
        if name and (syntax.host_name(name) or syntax.dns_name(name, wildcard=True)):
            dns.append(name.lower())
    return tuple(sorted(set(dns))), tuple(sorted(set(ips)))


def prepare(inventory, hosts, save: bool = True, now: datetime.datetime | None = None) -> dict[str, Material]:
    """Material for every host with tls on. save=False (check mode) writes nothing: what would be
    issued is made in memory only."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    wanted = [h for h in hosts if mode(h) != "off"]
    out = {}
    for h in wanted:
        if mode(h) == "provided":
            out[h.name] = provided(h, inventory)
        elif mode(h) == "acme":
            for field_ in ("acme_directory_ca", "acme_root"):
                _readable(inventory, h, field_)
            kept = acme_material(inventory, h)
            if kept is not None:
                out[h.name] = kept
    signed = [h for h in wanted if mode(h) == "self-signed"]
    if signed:
        store = store_dir(inventory)
        with _locked(store, save):
            if save:
                _migrate(store)
            # check mode before the first run of this release reads an old store where it is
            old = not save and not ca_dir(inventory).exists() and _is_ca_pair(*_load(store, "ca"))
            ca_cert, ca_key = _ca(store if old else ca_dir(inventory), save, now, _permitted(inventory))
            for h in signed:
                out[h.name] = _server(store if old else hosts_dir(inventory), h, ca_cert, ca_key, save, now)
    return out


def _permitted(inventory) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What the CA may sign: every self-signed proxy's names and addresses (all of them, not only
    the hosts of this run, so that a --limit run does not narrow the CA)."""
    dns, ips = set(), set()
    for h in inventory.group("proxies"):
        if mode(h) == "self-signed":
            d, i = names(h)
            dns.update(n[2:] if n.startswith("*.") else n for n in d)
            ips.update(i)
    return tuple(sorted(dns)), tuple(sorted(ips))


def local_server_certificate(folder: Path, name: str, address: str,
                             now: datetime.datetime | None = None) -> tuple[Path, Path, Path]:
    """A CA of its own in ``folder``/ca and a certificate it signs for one name and address (a lab
    service's HTTPS listener), kept and reused as the inventory's are: (CA certificate, server
    certificate, server key)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    host = SimpleNamespace(name=name, vars={}, address=address, explicit_address=True)
    with _locked(folder, True):
        ca_cert, ca_key = _ca(folder / "ca", True, now, names(host))
        _server(folder, host, ca_cert, ca_key, True, now)
    return folder / "ca" / "ca.crt", folder / f"{name}.crt", folder / f"{name}.key"


# -- provided ----------------------------------------------------------------------------------

def _local(inventory, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (Path(inventory.path).parent / p).resolve()


def provided(host, inventory) -> Material:
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    paths = {k: _local(inventory, host.vars[k]) for k in ("tls_cert", "tls_key")}
    try:
        cert_pem, key_pem = paths["tls_cert"].read_bytes(), paths["tls_key"].read_bytes()
    except OSError as exc:
        raise TLSError(f"host {host.name!r}: tls: provided: cannot read {exc.filename}: {exc.strerror}") from None
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise TLSError(f"host {host.name!r}: {paths['tls_cert']}: not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise TLSError(f"host {host.name!r}: {paths['tls_key']}: not an unencrypted PEM private key") from None
    if not _same_key(chain[0], key):
        raise TLSError(f"host {host.name!r}: {paths['tls_key']} is not the key of {paths['tls_cert']}")
    trust = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (chain[1:] or chain))
    return Material(cert_pem, key_pem, trust, chain[0].serial_number)


# -- acme: the control route's store ------------------------------------------------------------

def acme_names(host) -> tuple[str, ...]:
    """The DNS names an ACME certificate covers: the names the proxy serves, then tls_names (no
    addresses: HTTP-01 validates names). The first one names the certificate (and mod_md's MDomain)."""
    found = [str(n).lower() for n in served_names(host.vars, host.name) + list(host.vars.get("tls_names") or [])]
    return tuple(dict.fromkeys(found))


def acme_directory(host) -> str:
    return host.vars.get("acme_directory") or ACME_DIRECTORY


def renew_window(host) -> datetime.timedelta:
    """acme_renew_window ("30d", "72h", "3600s"): renew when less than this is left."""
    text = host.vars.get("acme_renew_window") or ACME_RENEW_WINDOW
    return datetime.timedelta(seconds=int(text[:-1]) * WINDOW_UNITS[text[-1]])


def acme_dir(inventory) -> Path:
    return store_dir(inventory) / "acme"


def directory_ca(host, inventory) -> Path | None:
    """The CA file the ACME directory's HTTPS certificate chains to (acme_directory_ca; None: the
    system's trust store)."""
    value = host.vars.get("acme_directory_ca")
    return _local(inventory, value) if value else None


def _readable(inventory, host, field_: str) -> None:
    """A CA file the inventory names for tls: acme must be there and hold a PEM certificate."""
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography import x509
    if not host.vars.get(field_):
        return
    path = _local(inventory, host.vars[field_])
    try:
        x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        raise TLSError(f"host {host.name!r}: field {field_!r}: cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise TLSError(f"host {host.name!r}: field {field_!r}: {path} is not a PEM certificate") from None


def read_directory_ca(host, inventory) -> bytes:
    """acme_directory_ca's content (checked by prepare), for mod_md's MDCACertificateFile."""
    return directory_ca(host, inventory).read_bytes()


def acme_material(inventory, host) -> Material | None:
    """The control route's kept certificate (chain) and key for this proxy, if both are there and match."""
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography import x509
    folder = acme_dir(inventory)
    try:
        cert_pem = (folder / f"{host.name}.crt").read_bytes()
        key_pem = (folder / f"{host.name}.key").read_bytes()
    except OSError:
        return None
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
        key = _load_key(key_pem)
    except (ValueError, TypeError):
        return None
    if not _same_key(chain[0], key):
        return None
    return Material(cert_pem, key_pem, b"".join(_cert_pem(c) for c in chain[1:]), chain[0].serial_number)


def acme_due(inventory, host, now: datetime.datetime | None = None) -> str | None:
    """Why the control route must order a certificate for this proxy now (None: the kept one serves)."""
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography import x509
    now = now or datetime.datetime.now(datetime.timezone.utc)
    kept = acme_material(inventory, host)
    if kept is None:
        return "no certificate yet"
    cert = x509.load_pem_x509_certificate(kept.cert)
    if certificate_names(cert) != set(acme_names(host)):
        return "its names changed"
    if _acme_record(inventory, host).get("directory") != acme_directory(host):
        return "the ACME directory changed"
    window = renew_window(host)
    if cert.not_valid_after_utc - now < window:
        return f"expires {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, within the renewal window ({window_text(window)})"
    return None


def served_problem(host, pem: str | bytes | None, now: datetime.datetime) -> str | None:
    """Why a certificate (PEM, leaf first) does not do for this acme proxy: it lacks a name, or is
    within the renewal window (None: it does)."""
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography import x509
    if not pem:
        return "no certificate yet"
    cert = x509.load_pem_x509_certificates(pem.encode() if isinstance(pem, str) else pem)[0]
    missing = sorted(set(acme_names(host)) - certificate_names(cert))
    if missing:
        return f"its certificate lacks {', '.join(missing)}"
    if cert.not_valid_after_utc - now < renew_window(host):
        return f"its certificate expires {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, within the renewal window"
    return None


def days_left(pem: str | bytes, now: datetime.datetime | None = None) -> int:
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography import x509
    now = now or datetime.datetime.now(datetime.timezone.utc)
    cert = x509.load_pem_x509_certificates(pem.encode() if isinstance(pem, str) else pem)[0]
    return int((cert.not_valid_after_utc - now).total_seconds() // 86400)


def window_text(window: datetime.timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in WINDOW_UNITS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def certificate_names(cert) -> set[str]:
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography import x509
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {n.lower() for n in san.get_values_for_type(x509.DNSName)}


def _acme_record(inventory, host) -> dict:
    try:
        return json.loads((acme_dir(inventory) / f"{host.name}.json").read_text())
    except (OSError, ValueError):
        return {}


def account_key(inventory, directory: str) -> bytes:
    """The ACME account key for this directory (one account per CA directory and inventory), made
    on first use; 0600 in the store."""
    folder = acme_dir(inventory)
    path = folder / f"account-{hashlib.sha256(directory.encode()).hexdigest()[:16]}.key"
    with _locked(store_dir(inventory), True):
        if not path.exists():
            folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write(path, _key_pem(_new_key()), 0o600)
        return path.read_bytes()


def new_key_pem() -> bytes:
    return _key_pem(_new_key())


def save_acme(inventory, host, cert_pem: bytes, key_pem: bytes) -> Material:
    """Keep what the CA issued (key first: a certificate is never kept without its key), 0600."""
    folder = acme_dir(inventory)
    with _locked(store_dir(inventory), True):
        folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write(folder / f"{host.name}.key", key_pem, 0o600)
        _write(folder / f"{host.name}.crt", cert_pem, 0o600)
        _write(folder / f"{host.name}.json", json.dumps({"directory": acme_directory(host)}).encode() + b"\n", 0o600)
    found = acme_material(inventory, host)
    if found is None:
        raise TLSError(f"host {host.name!r}: the ACME CA's certificate does not match the key it was ordered with")
    return found


def _load_key(pem: bytes):
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography.hazmat.primitives import serialization
    return serialization.load_pem_private_key(pem, password=None)


# -- self-signed: the inventory's CA --------------------------------------------------------------

@contextmanager
def _locked(folder: Path, save: bool):
    """One deploy at a time changes the store."""
    if not save:
        yield
        return
    _make_store(folder.parent)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _make_store(root: Path):
    """``.tls/`` beside the inventory, when missing: made 0700, with a .gitignore that ignores
    everything in it (itself included), so that a `git add -A` of the inventory's repository
    never takes the keys along."""
    try:
        root.mkdir(mode=0o700)
    except FileExistsError:
        return
    _write(root / ".gitignore", STORE_IGNORE.encode(), 0o644)


def _write(path: Path, data: bytes, mode_: int):
    path.parent.mkdir(mode=0o700, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode_)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode_)
    os.replace(tmp, path)


def _new_key():
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key) -> bytes:
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert) -> bytes:
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography.hazmat.primitives import serialization
    return cert.public_bytes(serialization.Encoding.PEM)


def _same_key(cert, key) -> bool:
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography.hazmat.primitives import serialization
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def _load(folder: Path, stem: str):
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    try:
        cert = x509.load_pem_x509_certificate((folder / f"{stem}.crt").read_bytes())
    except (OSError, ValueError):
        cert = None
    try:
        key = serialization.load_pem_private_key((folder / f"{stem}.key").read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        key = None
    return cert, key


def _is_ca(cert) -> bool:
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography import x509
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _is_ca_pair(cert, key) -> bool:
    return cert is not None and key is not None and _is_ca(cert) and _same_key(cert, key)


def _migrate(store: Path):
    """Earlier releases kept the CA and the issued certificates side by side in the store itself.
    The CA moves to ca/ (only if it really is a CA whose key matches: a proxy named "ca" once
    overwrote it with a leaf), the other pairs to hosts/. Nothing is re-issued for the move."""
    ca = store / "ca"
    if not ca.exists() and _is_ca_pair(*_load(store, "ca")):
        ca.mkdir(mode=0o700)
        for suffix in (".key", ".crt"):
            os.replace(store / f"ca{suffix}", ca / f"ca{suffix}")
    hosts = store / "hosts"
    for crt in sorted(store.glob("*.crt")):
        if crt.stem == "ca" or not (store / f"{crt.stem}.key").is_file():
            continue
        hosts.mkdir(mode=0o700, exist_ok=True)
        if not (hosts / crt.name).exists():
            for suffix in (".key", ".crt"):
                os.replace(store / f"{crt.stem}{suffix}", hosts / f"{crt.stem}{suffix}")


def _constraints(cert):
    """(DNS names, addresses) a CA certificate's name constraints permit, or None without any."""
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography import x509
    try:
        nc = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None
    subtrees = nc.permitted_subtrees or []
    return (tuple(sorted(n.value.lower() for n in subtrees if isinstance(n, x509.DNSName))),
            tuple(sorted(str(n.value.network_address) for n in subtrees if isinstance(n, x509.IPAddress))))


def _ca(folder: Path, save: bool, now, permitted=((), ())):
    """The inventory's CA. A CA whose name constraints differ from ``permitted`` (a proxy was
    added, or it predates the constraints) keeps its key and subject and gets a new certificate,
    so that every certificate it issued still chains to it and nothing is re-issued."""
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    cert, key = _load(folder, "ca")
    usable = _is_ca_pair(cert, key) and cert.not_valid_after_utc - now > CERT_LIFETIME
    if usable and _constraints(cert) == permitted:
        return cert, key
    if not usable:
        key = _new_key()
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "provision"),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"provision CA for {folder.parent.name}")])
        not_after = now + CA_LIFETIME
    else:
        name, not_after = cert.subject, cert.not_valid_after_utc
    dns, ips = permitted
    allowed = [x509.DNSName(n) for n in dns] + \
        [x509.IPAddress(ipaddress.ip_network(a)) for a in ips]
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.NameConstraints(permitted_subtrees=allowed, excluded_subtrees=None),
                           critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    if save:
        _write(folder / "ca.key", _key_pem(key), 0o600)
        _write(folder / "ca.crt", _cert_pem(cert), 0o644)
    return cert, key


def reissue_reason(cert, key, ca_cert, host, now) -> str | None:
    """Why the kept certificate cannot be served again (None: it can)."""
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography import x509
    if cert is None:
        return "no certificate yet"
    if key is None or not _same_key(cert, key):
        return "the certificate does not match its key"
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, Exception):
        return "not signed by the inventory's CA"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "no subject alternative names"
    have = (tuple(sorted(n.lower() for n in san.get_values_for_type(x509.DNSName))),
            tuple(sorted(str(a) for a in san.get_values_for_type(x509.IPAddress))))
    if have != names(host):
        return "its names changed"
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return f"expires {cert.not_valid_after_utc:%Y-%m-%d}, within {RENEW_BEFORE.days} days"
    return None


def _server(folder: Path, host, ca_cert, ca_key, save: bool, now) -> Material:
    # lazy: cryptography costs ~28 ms of start-up, needed only with TLS
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    cert, key = _load(folder, host.name)
    trust = _cert_pem(ca_cert)
    if reissue_reason(cert, key, ca_cert, host, now) is None:
        return Material(_cert_pem(cert), _key_pem(key), trust, cert.serial_number)
    if key is None:
        key = _new_key()
        if save:
            _write(folder / f"{host.name}.key", _key_pem(key), 0o600)
    dns, ips = names(host)
    alt = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    common = host.vars.get("server_name", host.name)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + CERT_LIFETIME)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    if save:
        _write(folder / f"{host.name}.crt", _cert_pem(cert), 0o644)
    return Material(_cert_pem(cert), _key_pem(key), trust, cert.serial_number, issued=True)
