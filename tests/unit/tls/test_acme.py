"""tls: acme, the pure parts: names and store (provision/tls.py), the route from the platform table,
the mod_md and control-route renderings and plans (provision/roles/proxy.py), mod_md's error records
(provision/certificates.py, on the lab's captures), the certificate facts and what status and verify
make of them. The lab test (tests/lab/test_acme_lab.py) runs it all against a real ACME server."""
import datetime
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provision import acme_client, certificates, facts as factlib, tls, verify
from provision.apply import handlers_to_run
from provision.engine import Options
from provision.facts import Facts, FileState, release_platform
from provision.inventory import load
from provision.ops import status
from provision.platforms import (APACHE_VERSION_BY_RELEASE, DEBIAN, FAMILY_BY_ID, MOD_MD_SINCE, PLATFORMS,
                                 REDHAT)
from provision.roles import proxy

ROOT = Path(__file__).resolve().parents[3]
FIX = ROOT / "tests/fixtures/mod_md"
NOW = datetime.datetime(2026, 12, 3, 9, 0, tzinfo=datetime.timezone.utc)
NAMES = ("app.example.test", "www.app.example.test")
ROCKY8 = release_platform(REDHAT, "rocky", "8.9")
ROCKY9 = release_platform(REDHAT, "rocky", "9.3")


@pytest.fixture
def inventory(tmp_path):
    text = (ROOT / "inventory/lab-acme.yml").read_text().replace("../.lab/ssh_config", "ssh_config")
    for name in ("directory-ca.pem", "pebble-root.pem"):
        text = text.replace(f"../.lab/acme/{name}", name)
        (tmp_path / name).write_bytes(issue(("ca.example.test",), NOW, NOW + datetime.timedelta(days=9))[0])
    (tmp_path / "ssh_config").write_text("")
    (tmp_path / "lab-acme.yml").write_text(text)
    return load(tmp_path / "lab-acme.yml")


def issue(names, not_before, not_after):
    """(certificate PEM, key PEM) for names, signed by a throwaway issuer: what an ACME CA returns."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Intermediate CA 1a2b3c")])
    cert = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=True)
            .sign(key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return cert.public_bytes(pem), key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())


def keep(inventory, host, names=NAMES, days=90, age=0):
    start = NOW - datetime.timedelta(days=age)
    return tls.save_acme(inventory, host, *issue(names, start, start + datetime.timedelta(days=days)))


# -- names, window, store --------------------------------------------------------------------------

def test_names_are_the_served_names_then_tls_names_first_one_names_the_certificate(inventory):
    host = inventory.hosts["proxy"]
    assert tls.acme_names(host) == NAMES
    host.vars["tls_names"] = ["API.example.test", "app.example.test"]
    assert tls.acme_names(host) == (*NAMES, "api.example.test")
    short = SimpleNamespace(name="proxy", vars={"server_name": "www.example.test", "tls_names": ["example.test"]})
    assert tls.acme_names(short) == ("www.example.test", "example.test")     # the short form's one vhost


@pytest.mark.parametrize("text,seconds,shown", [(None, 30 * 86400, "30d"), ("72h", 72 * 3600, "3d"),
                                                ("7775990s", 7775990, "7775990s"), ("91d", 91 * 86400, "91d")])
def test_renew_window(text, seconds, shown):
    host = SimpleNamespace(vars={"acme_renew_window": text} if text else {})
    assert tls.renew_window(host).total_seconds() == seconds and tls.window_text(tls.renew_window(host)) == shown


def test_directory_defaults_to_lets_encrypt_production():
    assert tls.acme_directory(SimpleNamespace(vars={})) == "https://acme-v02.api.letsencrypt.org/directory"


def test_due_reasons(inventory):
    host = inventory.hosts["proxy"]
    assert tls.acme_due(inventory, host, NOW) == "no certificate yet"
    keep(inventory, host)
    assert tls.acme_due(inventory, host, NOW) is None
    assert tls.acme_due(inventory, host, NOW + datetime.timedelta(days=59)) is None
    assert tls.acme_due(inventory, host, NOW + datetime.timedelta(days=61)) == \
        "expires 2027-03-03 09:00 UTC, within the renewal window (30d)"
    host.vars["acme_renew_window"] = "91d"
    assert tls.acme_due(inventory, host, NOW).startswith("expires 2027-03-03")
    del host.vars["acme_renew_window"]
    host.vars["tls_names"] = ["api.example.test"]
    assert tls.acme_due(inventory, host, NOW) == "its names changed"
    del host.vars["tls_names"]
    host.vars["acme_directory"] = "https://acme-staging-v02.api.letsencrypt.org/directory"
    assert tls.acme_due(inventory, host, NOW) == "the ACME directory changed"


def test_store_is_private_and_prepare_serves_the_kept_pair(inventory, tmp_path):
    host = inventory.hosts["proxy"]
    assert tls.prepare(inventory, [host]) == {}          # nothing yet: the control route's first run
    made = keep(inventory, host)
    account = tls.account_key(inventory, tls.acme_directory(host))
    assert tls.account_key(inventory, tls.acme_directory(host)) == account
    store = tmp_path / ".tls/lab-acme/acme"
    assert {p.stat().st_mode & 0o777 for p in store.iterdir()} == {0o600}
    assert {p.name for p in store.iterdir()} >= {"proxy.crt", "proxy.key", "proxy.json"}
    assert (tmp_path / ".tls/lab-acme").stat().st_mode & 0o777 == 0o700
    assert tls.prepare(inventory, [host])["proxy"] == made
    assert "key" not in repr(made).replace("Material", "")      # the key is never in a repr


def test_a_mismatched_pair_is_not_kept(inventory):
    host = inventory.hosts["proxy"]
    cert, _ = issue(NAMES, NOW, NOW + datetime.timedelta(days=90))
    _, other_key = issue(NAMES, NOW, NOW + datetime.timedelta(days=90))
    with pytest.raises(tls.TLSError, match="does not match the key it was ordered with"):
        tls.save_acme(inventory, host, cert, other_key)


def test_unreadable_ca_files_are_refused_in_one_line(inventory, tmp_path):
    host = inventory.hosts["proxy"]
    (tmp_path / "pebble-root.pem").write_text("not a certificate")
    with pytest.raises(tls.TLSError, match=r"host 'proxy': field 'acme_root': .*pebble-root.pem is not a PEM certificate"):
        tls.prepare(inventory, [host])
    host.vars["acme_directory_ca"] = "missing.pem"
    with pytest.raises(tls.TLSError, match=r"field 'acme_directory_ca': cannot read .*missing.pem"):
        tls.prepare(inventory, [host])


def test_served_problem():
    host = SimpleNamespace(name="proxy", vars={"sites": [{"server_name": NAMES[0], "aliases": [NAMES[1]]}]})
    fine, _ = issue(NAMES, NOW, NOW + datetime.timedelta(days=90))
    assert tls.served_problem(host, fine, NOW) is None
    assert tls.served_problem(host, None, NOW) == "no certificate yet"
    assert tls.served_problem(host, issue(NAMES[:1], NOW, NOW + datetime.timedelta(days=90))[0], NOW) == \
        "its certificate lacks www.app.example.test"
    assert tls.served_problem(host, fine, NOW + datetime.timedelta(days=61)).startswith("its certificate expires")
    assert tls.days_left(fine, NOW + datetime.timedelta(hours=1)) == 89


# -- the route, from the platform table ---------------------------------------------------------------

def test_mod_md_exactly_where_the_release_ships_httpd_2_4_30_or_later():
    for (os_id, major), version in APACHE_VERSION_BY_RELEASE.items():
        platform = release_platform(PLATFORMS[FAMILY_BY_ID[os_id]], os_id, major)
        assert (platform.md_packages is not None) == (version >= MOD_MD_SINCE), (os_id, major, version)
    assert DEBIAN.md_packages == () and REDHAT.md_packages is None and ROCKY8.md_packages == ("mod_md",)
    # MDContactEmail needs 2.4.42: before it (RHEL 8's 2.4.37) mod_md reads ServerAdmin
    assert (ROCKY8.md_contact, ROCKY9.md_contact, DEBIAN.md_contact) == ("ServerAdmin", "MDContactEmail", "MDContactEmail")


def test_route(inventory):
    host = inventory.hosts["proxy"]
    assert [proxy.acme_route(host, p) for p in (DEBIAN, REDHAT, ROCKY8)] == ["mod_md", "control", "mod_md"]
    host.vars["acme_client"] = "control"
    assert [proxy.acme_route(host, p) for p in (DEBIAN, REDHAT, ROCKY8)] == ["control"] * 3
    host.vars["tls"] = "self-signed"
    assert proxy.acme_route(host, DEBIAN) is None


# -- mod_md's rendering and plan -------------------------------------------------------------------------

def options_for(inventory, material=None):
    options = Options()
    options.tls = tls.prepare(inventory, inventory.group("proxies")) if material is None else material
    return options


def test_mod_md_vhost(inventory):
    text = proxy.vhost(inventory.hosts["proxy"], DEBIAN, options_for(inventory))
    lines = [line for line in text.splitlines() if line.startswith("MD") or line.startswith("ServerAdmin")]
    assert lines == ["MDCertificateAuthority https://10.123.0.2:14000/dir", "MDContactEmail ops@example.test",
                     "MDCertificateAgreement accepted", "MDCAChallenges http-01", "MDRenewWindow 30d",
                     "MDMembers manual", "MDMessageCmd /usr/local/lib/provision/md-message",
                     "MDCACertificateFile /etc/apache2/provision/acme-directory-ca.pem",
                     "MDomain app.example.test www.app.example.test"]
    secure = text.split("<VirtualHost *:443>", 1)[1]
    assert "SSLEngine on" in secure and "\n    SSLCertificateFile" not in secure
    assert "acme-challenge" not in text          # mod_md answers the challenges itself
    assert "https://httpd.apache.org/docs/2.4/mod/mod_md.html" in text


def test_mod_md_on_rhel8_takes_its_contact_from_serveradmin(inventory):
    host = inventory.hosts["proxy"]
    del host.vars["acme_directory_ca"]
    text = proxy.vhost(host, ROCKY8, options_for(inventory))
    assert "\nServerAdmin ops@example.test\n" in text and "\nMDContactEmail" not in text
    assert "MDCACertificateFile" not in text


def test_mod_md_steps_and_restart_on_first_load(inventory):
    host = inventory.hosts["proxy"]
    steps = proxy.resources(host, DEBIAN, inventory, options_for(inventory))
    labels = [s.label for s in steps]
    for want in ("acme directory CA /etc/apache2/provision/acme-directory-ca.pem",
                 "file /usr/local/lib/provision/md-message", "directory /var/lib/provision-md-renewed",
                 "unit /etc/systemd/system/provision-md-reload.path",
                 "unit /etc/systemd/system/provision-md-reload.service", "service provision-md-reload.path",
                 "acme certificate app.example.test (mod_md)", "absent /etc/apache2/provision/tls/proxy.key"):
        assert want in labels, want
    assert "no mod_md renewal hook" not in labels and "tls key /etc/apache2/provision/tls/proxy.key" not in labels
    marks = next(s for s in steps if s.label == "directory /var/lib/provision-md-renewed")
    assert (marks.owner, marks.mode) == ("www-data", "700")
    assert next(s for s in steps if s.label.endswith("md-message")).mode == "755"
    modules = next(s for s in steps if s.label.startswith("apache modules"))
    handlers = proxy.handlers(host, DEBIAN)
    assert set(handlers) == {"reload-apache", "restart-apache"}
    assert handlers["restart-apache"].script == "apache2ctl configtest\nsystemctl restart apache2"
    first = modules.plan(Facts(os={"ID": "debian"}, platform=DEBIAN, apache_modules={"proxy"}))
    assert (first.notify, first.satisfies) == (("restart-apache",), ("reload-apache",))
    vhost_change = SimpleNamespace(changed=True, notify=("reload-apache",), satisfies=())
    assert [h.name for h in handlers_to_run([first, vhost_change], set(), handlers)] == ["restart-apache"]
    later = modules.plan(Facts(os={"ID": "debian"}, platform=DEBIAN, apache_modules={"proxy", "md"}))
    assert later.notify == ("reload-apache",)


def test_mod_md_hook_files():
    steps = proxy.md_hook(DEBIAN)
    files = {s.path: s.content.decode() for s in steps if hasattr(s, "content")}
    hook = files["/usr/local/lib/provision/md-message"]
    assert hook.startswith("#!/bin/sh\n") and "renewed) date -u > /var/lib/provision-md-renewed/renewed ;;" in hook
    path_unit = files["/etc/systemd/system/provision-md-reload.path"]
    assert "PathExistsGlob=/var/lib/provision-md-renewed/*" in path_unit
    service = files["/etc/systemd/system/provision-md-reload.service"]
    assert ("ExecStart=/usr/bin/flock -s /run/provision/host.lock /bin/sh -c 'rm -f /var/lib/provision-md-renewed/*; "
            "apache2ctl configtest && systemctl reload apache2'") in service
    assert "\nExecStartPre=/bin/mkdir -p -m 700 /run/provision\n" in service     # the lock's folder, after a reboot
    proc = subprocess.run(["sh", "-n"], input=hook, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr


def test_mod_md_certificate_step_reports_what_mod_md_serves(inventory):
    host = inventory.hosts["proxy"]
    path = proxy.md_paths(host, DEBIAN)[0]
    assert path == "/etc/apache2/md/domains/app.example.test/pubcert.pem"
    step = proxy.MdCertificate(host, path, now=NOW)
    assert step.request().certificates == {path}
    none = step.plan(Facts(os={}, platform=DEBIAN))
    assert (none.changed, none.reason) == (False, "no certificate yet: mod_md orders one after Apache's reload")
    pem = issue(NAMES, NOW, NOW + datetime.timedelta(days=90))[0].decode()
    fine = step.plan(Facts(os={}, platform=DEBIAN, certificates={path: pem}))
    assert (fine.changed, fine.reason) == (False, "mod_md serves one for every name, 90 days left")


def test_leaving_mod_md_removes_its_hook_and_disables_ssl(inventory):
    host = inventory.hosts["proxy"]
    host.vars["tls"] = "off"
    steps = proxy.resources(host, DEBIAN, inventory, Options())
    off = next(s for s in steps if s.label == "no mod_md renewal hook")
    assert off.plan(Facts(os={}, platform=DEBIAN)).reason == "none"
    there = {proxy.MD_HOOK: FileState("file", "755", "root", "root", "x")}
    change = off.plan(Facts(os={}, platform=DEBIAN, files=there))
    assert change.script == ("systemctl disable --now provision-md-reload.path 2>/dev/null || true\n"
                             "rm -rf /usr/local/lib/provision/md-message\nsystemctl daemon-reload")
    ssl_off = next(s for s in steps if s.label == "apache module ssl off")
    assert ssl_off.plan(Facts(os={}, platform=DEBIAN, apache_modules={"ssl"}, files=there)).script == "a2dismod -q ssl"


# -- the control route's rendering and plan ----------------------------------------------------------

def test_control_route_before_the_first_certificate_serves_plain_http_and_the_challenges(inventory):
    host = inventory.hosts["proxy"]
    host.vars["tls_redirect"] = True
    options = options_for(inventory, {})
    assert not proxy.serves_tls(host, REDHAT, options) and proxy.serves_tls(host, DEBIAN, options)
    text = proxy.vhost(host, REDHAT, options)
    assert "<VirtualHost *:443>" not in text and "RewriteRule" not in text and "MDomain" not in text
    assert "    Alias /.well-known/acme-challenge/ /var/www/provision-acme/.well-known/acme-challenge/\n" in text
    labels = [s.label for s in proxy.resources(host, REDHAT, inventory, options)]
    assert "packages mod_ssl" not in labels and "tls off /etc/httpd/conf.d/ssl.conf" in labels
    assert "directory /var/www/provision-acme/.well-known/acme-challenge" in labels
    assert "firewalld service https" not in labels


def test_control_route_with_its_certificate_is_served_like_provided(inventory):
    host = inventory.hosts["proxy"]
    host.vars["tls_redirect"] = True
    cert, key = issue(NAMES, NOW, NOW + datetime.timedelta(days=90))
    material = tls.Material(cert + cert, key, b"", 1)
    text = proxy.vhost(host, REDHAT, options_for(inventory, {"proxy": material}))
    plain = text.split("<VirtualHost *:80>")[1].split("</VirtualHost>")[0]
    assert plain.index("ProxyPass /.well-known/acme-challenge/ !") < plain.index("Include ")
    assert "    RewriteCond %{REQUEST_URI} !^/\\.well-known/acme-challenge/\n" in plain
    assert "SSLCertificateFile /etc/httpd/provision/tls/proxy.crt" in text
    assert "SSLCertificateChainFile /etc/httpd/provision/tls/proxy.crt" in text
    steps = proxy.resources(host, REDHAT, inventory, options_for(inventory, {"proxy": material}))
    key_step = next(s for s in steps if s.label == "tls key /etc/httpd/provision/tls/proxy.key")
    assert key_step.secret and key_step.mode == "600" and key_step.content == key
    only = proxy.CertificateOnly.resources(host, REDHAT, inventory, options_for(inventory, {"proxy": material}))
    assert [s.label for s in only] == ["directory /etc/httpd/provision/tls", "tls key /etc/httpd/provision/tls/proxy.key",
                                       "tls certificate /etc/httpd/provision/tls/proxy.crt"]


def test_challenge_answers_are_written_quoted_and_refused_when_not_base64url():
    answers = [acme_client.Challenge("app.example.test", "tok_EN-1", "tok_EN-1.thumb")]
    script = certificates.publish_script(answers)
    assert "printf '%s' tok_EN-1.thumb > /var/www/provision-acme/.well-known/acme-challenge/tok_EN-1.tmp" in script
    assert certificates.withdraw_script(answers) == "rm -f /var/www/provision-acme/.well-known/acme-challenge/tok_EN-1\n"
    with pytest.raises(acme_client.AcmeError, match="app.example.test: the CA sent a token that is not base64url"):
        certificates.publish_script([acme_client.Challenge("app.example.test", "../../etc/passwd", "x")])


def test_an_unreachable_directory_is_one_error_naming_the_name():
    key = tls.new_key_pem()
    with pytest.raises(acme_client.AcmeError) as caught:
        acme_client.obtain("https://127.0.0.1:9/dir", key, "ops@example.test", NAMES, key, print, print)
    assert caught.value.name == "app.example.test"
    assert caught.value.text.startswith("https://127.0.0.1:9/dir: ") and "\n" not in caught.value.text


# -- mod_md's error records (lab captures) -----------------------------------------------------------

def test_md_error_names_the_refused_name_and_the_cas_words():
    job = (FIX / "job-refused.json").read_text()
    answer = (FIX / "error-log-answer.txt").read_text()
    ran = datetime.datetime(2026, 12, 3, 8, 47, 40, tzinfo=datetime.timezone.utc).timestamp()
    name, text = certificates.md_error(job, answer, ran - 10)
    assert name == "refused.example.test"
    assert text.startswith('Get "http://refused.example.test:80/.well-known/acme-challenge/')
    assert text.endswith('": dial tcp 10.123.0.11:80: connect: connection refused (connection)')
    assert certificates.md_error(job, answer, ran + 10) is None         # an error from before the run
    assert certificates.md_error(job, "", ran - 10) == ("app.example.test", "Error waiting on domain names to be validated")
    assert certificates.md_error((FIX / "job-obtained.json").read_text(), answer, 0) is None
    assert certificates.md_error("", answer, 0) is None


def test_md_read_script_reads_no_key(inventory):
    script = certificates.md_read_script(inventory.hosts["proxy"], DEBIAN)
    assert "privkey" not in script and "cat /etc/apache2/md/staging/app.example.test/job.json 2>/dev/null; echo" in script
    assert "tail -n 500 /var/log/apache2/error.log" in script


# -- the certificate facts: certificate blocks only -----------------------------------------------------

def test_certificate_facts_print_certificate_blocks_and_never_a_key(tmp_path):
    cert, key = issue(NAMES, NOW, NOW + datetime.timedelta(days=90))
    both = tmp_path / "both.pem"
    both.write_bytes(key + cert + cert)
    script = "\n".join(factlib.certificate_lines([str(both), str(tmp_path / "missing.pem")]))
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout
    assert "PRIVATE KEY" not in out and out.count("BEGIN CERTIFICATE") == 2
    found = factlib.parse_certificates(factlib.split_sections(out))
    assert list(found) == [str(both)] and found[str(both)].encode() == cert + cert


def test_status_shows_the_served_certificate(inventory):
    host = inventory.hosts["proxy"]
    pem = issue(NAMES, NOW, NOW + datetime.timedelta(days=90))[0].decode()
    facts = Facts(os={}, platform=DEBIAN, certificates={proxy.md_paths(host, DEBIAN)[0]: pem})
    shown = status.served_certificate(host, facts, NOW + datetime.timedelta(days=1))
    assert {k: shown[k] for k in ("issuer", "names", "days_left", "not_after")} == {
        "issuer": "Test Intermediate CA 1a2b3c", "names": list(NAMES), "days_left": 89,
        "not_after": "2027-03-03T09:00:00Z"}
    assert status._certificate_text(shown) == ("app.example.test, www.app.example.test issued by Test Intermediate "
                                               "CA 1a2b3c, 89 days left (until 2027-03-03T09:00:00Z)")
    host.vars["acme_client"] = "control"
    missing = status.served_certificate(host, facts)
    assert missing == {"file": "/etc/apache2/provision/tls/proxy.crt", "error": "no certificate there yet"}
    assert {"/etc/apache2/provision/tls/proxy.crt", "/etc/httpd/provision/tls/proxy.crt"} <= \
        status.certificate_files(host)


# -- verify ---------------------------------------------------------------------------------------

def test_verify_checks_every_name_by_sni_and_14_days(inventory):
    [check] = verify.plan(inventory, lookup=lambda h: {}).proxies
    assert (check.tls_names, check.sni, check.min_days) == (NAMES, "app.example.test", 14)
    assert check.trust.endswith("pebble-root.pem")
    end = NOW + datetime.timedelta(days=20)
    peer = {"notAfter": end.strftime("%b %d %H:%M:%S %Y GMT"),
            "subjectAltName": (("DNS", "app.example.test"), ("DNS", "www.app.example.test"))}
    assert verify.certificate_problems(peer, check, NOW.timestamp()) == []
    assert verify.certificate_problems(peer, check, (NOW + datetime.timedelta(days=7)).timestamp()) == [
        "certificate expires in 13 days (< 14)"]
    peer["subjectAltName"] = (("DNS", "app.example.test"),)
    assert verify.certificate_problems(peer, check, NOW.timestamp()) == [
        "certificate names ['app.example.test'] lack 'www.app.example.test'"]


def test_lab_pebble_config():
    from provision.lab import layout
    conf = layout.pebble_config("10.123.0.2", 14000, 15000, "/c.pem", "/k.pem")["pebble"]
    assert (conf["listenAddress"], conf["httpPort"], conf["certificateValidityPeriod"]) == \
        ("10.123.0.2:14000", 80, 90 * 86400)
    assert json.loads(json.dumps(conf)) == conf


def test_check_mode_says_which_orders_a_deploy_would_place(inventory):
    host = inventory.hosts["proxy"]
    host.vars["acme_client"] = "control"
    lines = []
    reporter = SimpleNamespace(step=lambda name, step: lines.append((name, step.status, step.reason)))
    seen = {"proxy": Facts(os={}, platform=DEBIAN)}
    found = certificates.would_order([host], seen, inventory, reporter, NOW)
    assert lines == [("proxy", "changed", "would order one from https://10.123.0.2:14000/dir (no certificate yet)")]
    assert found["proxy"].steps[0].label == "acme certificate app.example.test"
    keep(inventory, host, age=-1)           # issued a day ahead of the clock: 91 days left, not due
    assert certificates.would_order([host], seen, inventory, reporter, NOW) == {}
    del host.vars["acme_client"]            # mod_md: nothing for the control machine to order
    tls.save_acme(inventory, host, *issue(NAMES, NOW - datetime.timedelta(days=89), NOW))
    assert certificates.would_order([host], seen, inventory, reporter, NOW) == {}


def test_a_host_whose_connection_fails_during_an_order_fails_alone(inventory):
    host = inventory.hosts["proxy"]
    host.vars["acme_client"] = "control"
    failed = []
    reporter = SimpleNamespace(failed=lambda name, where, text: failed.append((name, where, text)))

    class Lost:
        def get(self, h):
            raise ConnectionError("the connection dropped")
    results = certificates.settle([host], {"proxy": Facts(os={}, platform=DEBIAN)}, inventory, Options(), Lost(),
                                  reporter, set(), 0.0)
    assert results["proxy"].failed and failed == [("proxy", "acme", "ConnectionError: the connection dropped")]
