"""What tls.prepare issues, field by field: the CA and the server certificate's extensions and
validity, the files and their modes, and the reasons a kept certificate is issued again."""
import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provision import tls
from provision.inventory import load

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)


@pytest.fixture
def inventory(tmp_path):
    text = (ROOT / "inventory/lab-tls.yml").read_text().replace("../.lab/ssh_config", "ssh_config")
    (tmp_path / "ssh_config").write_text("")
    (tmp_path / "lab-tls.yml").write_text(text)
    return load(tmp_path / "lab-tls.yml")


def ext(cert, kind):
    e = cert.extensions.get_extension_for_class(kind)
    return e.critical, e.value


def test_ca_and_server_certificate_fields(inventory, tmp_path):
    inventory.hosts["proxy"].vars["server_name"] = "www.example.test"
    made = tls.prepare(inventory, inventory.group("proxies"), now=NOW)["proxy"]
    ca = x509.load_pem_x509_certificate(made.trust)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "provision CA for lab-tls"
    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "provision"
    assert ca.issuer == ca.subject
    assert ext(ca, x509.BasicConstraints) == (True, x509.BasicConstraints(ca=True, path_length=0))
    critical, usage = ext(ca, x509.KeyUsage)
    assert critical and (usage.key_cert_sign, usage.crl_sign, usage.digital_signature, usage.key_encipherment) == (
        True, True, True, False)
    assert (ca.not_valid_before_utc, ca.not_valid_after_utc) == (NOW - datetime.timedelta(minutes=5),
                                                                 NOW + tls.CA_LIFETIME)
    cert = x509.load_pem_x509_certificate(made.cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "www.example.test"
    assert cert.issuer == ca.subject and cert.serial_number == made.serial
    assert ext(cert, x509.BasicConstraints) == (True, x509.BasicConstraints(ca=False, path_length=None))
    critical, usage = ext(cert, x509.KeyUsage)
    assert critical and (usage.digital_signature, usage.key_encipherment, usage.key_cert_sign, usage.crl_sign) == (
        True, True, False, False)
    assert ext(cert, x509.ExtendedKeyUsage) == (False, x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]))
    assert ext(cert, x509.AuthorityKeyIdentifier)[1].key_identifier == ext(ca, x509.SubjectKeyIdentifier)[1].digest
    assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (NOW - datetime.timedelta(minutes=5),
                                                                     NOW + tls.CERT_LIFETIME)
    assert ext(cert, x509.SubjectAlternativeName)[0] is False
    assert made.issued and not made.chained
    store = tmp_path / ".tls/lab-tls"
    assert {p.name: p.stat().st_mode & 0o777 for p in store.iterdir() if not p.name.startswith(".")} == {
        "ca.crt": 0o644, "ca.key": 0o600, "proxy.crt": 0o644, "proxy.key": 0o600}
    assert (store / "proxy.crt").read_bytes() == made.cert and (store / "proxy.key").read_bytes() == made.key
    assert (store / "ca.crt").read_bytes() == made.trust
    assert tls.ca_path(inventory) == store / "ca.crt" == tls.trust_path(inventory.hosts["proxy"], inventory)


def test_check_mode_writes_nothing(inventory, tmp_path):
    made = tls.prepare(inventory, inventory.group("proxies"), save=False, now=NOW)["proxy"]
    assert made.issued and not (tmp_path / ".tls").exists()


def test_names_of_a_host():
    class H:
        name = "Proxy"
        address = "10.0.0.10"
        explicit_address = True
        vars = {"server_name": "WWW.example.test", "tls_names": ["10.0.0.99", "alt.test"],
                "private_address": "192.168.1.10"}
    assert tls.names(H()) == (("alt.test", "proxy", "www.example.test"), ("10.0.0.10", "10.0.0.99", "192.168.1.10"))
    H.explicit_address = False
    H.vars = {}
    assert tls.names(H()) == (("proxy",), ())


def test_reissue_reasons(inventory):
    host = inventory.hosts["proxy"]
    first = tls.prepare(inventory, [host], now=NOW)["proxy"]
    store = tls.store_dir(inventory)
    cert, key = tls._load(store, "proxy")
    ca_cert, ca_key = tls._load(store, "ca")
    assert tls.reissue_reason(cert, key, ca_cert, host, NOW) is None
    assert tls.reissue_reason(None, key, ca_cert, host, NOW) == "no certificate yet"
    assert tls.reissue_reason(cert, None, ca_cert, host, NOW) == "the certificate does not match its key"
    assert tls.reissue_reason(cert, ca_key, ca_cert, host, NOW) == "the certificate does not match its key"
    assert tls.reissue_reason(ca_cert, ca_key, cert, host, NOW) == "not signed by the inventory's CA"
    late = cert.not_valid_after_utc - datetime.timedelta(days=29)
    assert tls.reissue_reason(cert, key, ca_cert, host, late) == \
        f"expires {cert.not_valid_after_utc:%Y-%m-%d}, within 30 days"
    assert tls.reissue_reason(cert, key, ca_cert, host, late - datetime.timedelta(days=2)) is None
    host.vars["tls_names"] = ["new.test"]
    assert tls.reissue_reason(cert, key, ca_cert, host, NOW) == "its names changed"
    again = tls.prepare(inventory, [host], now=NOW)["proxy"]
    assert again.issued and again.serial != first.serial and again.key == first.key   # same key kept


def test_ca_near_its_end_is_made_again(inventory):
    host = inventory.hosts["proxy"]
    first = tls.prepare(inventory, [host], now=NOW)["proxy"]
    later = NOW + tls.CA_LIFETIME - tls.CERT_LIFETIME + datetime.timedelta(days=1)
    second = tls.prepare(inventory, [host], now=later)["proxy"]
    assert second.trust != first.trust and second.issued


def test_off_hosts_get_nothing(inventory):
    host = inventory.hosts["proxy"]
    host.vars["tls"] = "off"
    assert tls.prepare(inventory, [host], now=NOW) == {}
    assert tls.trust_path(host, inventory) is None


def test_key_usage_and_key_size_exactly(inventory):
    made = tls.prepare(inventory, inventory.group("proxies"), now=NOW)["proxy"]
    ca, cert = x509.load_pem_x509_certificate(made.trust), x509.load_pem_x509_certificate(made.cert)
    assert ext(ca, x509.KeyUsage)[1] == x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False)
    assert ext(cert, x509.KeyUsage)[1] == x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=True, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)
    assert ca.public_key().key_size == cert.public_key().key_size == 2048
    assert ext(ca, x509.SubjectKeyIdentifier)[0] is False and ext(cert, x509.SubjectKeyIdentifier)[0] is False
    assert ext(cert, x509.AuthorityKeyIdentifier)[0] is False


def test_ca_with_exactly_a_certificate_lifetime_left_is_made_again(inventory):
    host = inventory.hosts["proxy"]
    first = tls.prepare(inventory, [host], now=NOW)["proxy"]
    ca = x509.load_pem_x509_certificate(first.trust)
    second = tls.prepare(inventory, [host], now=ca.not_valid_after_utc - tls.CERT_LIFETIME)["proxy"]
    assert second.trust != first.trust
    third = tls.prepare(inventory, [host], now=NOW + datetime.timedelta(days=1))["proxy"]
    assert third.trust == second.trust


def write_provided(inventory, tmp_path, chain_of_two=True):
    from cryptography.hazmat.primitives import serialization
    store = tmp_path / "ca-here"
    ca_cert, ca_key = tls._ca(store, False, NOW)
    host = inventory.hosts["proxy"]
    made = tls._server(store, host, ca_cert, ca_key, False, NOW)
    chain = made.cert + (made.trust if chain_of_two else b"")
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(made.key)
    host.vars.update(tls="provided", tls_cert=str(tmp_path / "chain.pem"), tls_key="key.pem")
    return host, made, ca_cert.public_bytes(serialization.Encoding.PEM)


def test_provided_chain_trusts_its_issuers_and_keeps_the_files_as_given(inventory, tmp_path):
    host, made, ca_pem = write_provided(inventory, tmp_path)
    got = tls.prepare(inventory, [host], now=NOW)["proxy"]
    assert (got.cert, got.key, got.trust, got.serial, got.issued) == (
        made.cert + ca_pem, made.key, ca_pem, made.serial, False)
    assert got.chained
    assert tls.trust_path(host, inventory) == tmp_path / "chain.pem"


def test_provided_single_certificate_trusts_itself(inventory, tmp_path):
    host, made, _ = write_provided(inventory, tmp_path, chain_of_two=False)
    got = tls.prepare(inventory, [host], now=NOW)["proxy"]
    assert got.trust == made.cert and not got.chained


@pytest.mark.parametrize("what,cert,key,message", [
    ("not pem", b"junk", None, "host 'proxy': {dir}/chain.pem: not a PEM certificate"),
    ("key not pem", None, b"junk", "host 'proxy': {dir}/key.pem: not an unencrypted PEM private key"),
])
def test_provided_files_that_are_not_pem(inventory, tmp_path, what, cert, key, message):
    host, _, _ = write_provided(inventory, tmp_path)
    if cert is not None:
        (tmp_path / "chain.pem").write_bytes(cert)
    if key is not None:
        (tmp_path / "key.pem").write_bytes(key)
    with pytest.raises(tls.TLSError) as err:
        tls.prepare(inventory, [host], now=NOW)
    assert str(err.value) == message.format(dir=tmp_path)


def test_provided_key_of_another_certificate_and_a_missing_file(inventory, tmp_path):
    host, _, _ = write_provided(inventory, tmp_path)
    other = tls._key_pem(tls._new_key())
    (tmp_path / "key.pem").write_bytes(other)
    with pytest.raises(tls.TLSError) as err:
        tls.prepare(inventory, [host], now=NOW)
    assert str(err.value) == f"host 'proxy': {tmp_path}/key.pem is not the key of {tmp_path}/chain.pem"
    (tmp_path / "key.pem").unlink()
    with pytest.raises(tls.TLSError) as err:
        tls.prepare(inventory, [host], now=NOW)
    assert str(err.value) == f"host 'proxy': tls: provided: cannot read {tmp_path}/key.pem: No such file or directory"
