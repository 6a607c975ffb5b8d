"""Drift the facts can see, on Apache's module files: a module disabled by hand, a module the
package stopped loading, a drop-in no longer needed or edited by hand."""
import hashlib

from provision.facts import Facts, FileState
from provision.platforms import DEBIAN, PROXY_MODULES, REDHAT
from provision.resources import ApacheModuleDropin, ApacheModules

DROPIN = "/etc/httpd/conf.modules.d/99-provision.conf"
STOCK = "/etc/httpd/conf.modules.d/00-proxy.conf"


def redhat(load_modules, files=None):
    return Facts(os={"ID": "centos"}, platform=REDHAT, packages={"httpd": "2.4.6"}, load_modules=load_modules,
                 files=files or {})


def dropin():
    return ApacheModuleDropin(DROPIN, PROXY_MODULES, "httpd", notify=("reload-apache",), validate="apache")


def test_debian_module_disabled_by_hand_is_enabled_again():
    f = Facts(os={"ID": "debian"}, platform=DEBIAN, apache_modules={"proxy", "proxy_balancer", "lbmethod_byrequests"})
    change = ApacheModules(tuple(PROXY_MODULES), notify=("reload-apache",)).plan(f)
    assert (change.script, change.reason, change.notify) == ("a2enmod -q proxy_http", "enabled proxy_http",
                                                            ("reload-apache",))


def test_redhat_module_the_package_no_longer_loads_goes_into_the_dropin():
    loaded = {mid: STOCK for mid, _ in PROXY_MODULES.values() if mid != "proxy_http_module"}
    change = dropin().plan(redhat(loaded))
    assert change.changed and change.validate == "apache" and change.notify == ("reload-apache",)
    assert change.new_content.decode().splitlines()[1:] == ["LoadModule proxy_http_module modules/mod_proxy_http.so"]


def test_redhat_dropin_no_longer_needed_is_removed_under_configtest():
    loaded = {mid: STOCK for mid, _ in PROXY_MODULES.values()}
    change = dropin().plan(redhat(loaded, {DROPIN: FileState("file", "644", "root", "root", "x")}))
    assert change.reason == "drop-in no longer needed: removed"
    assert change.script == f"mv -f {DROPIN} {DROPIN}.provision-bak"
    assert change.label == "apache modules proxy proxy_http proxy_balancer lbmethod_byrequests"


def test_redhat_dropin_edited_by_hand_is_rewritten():
    loaded = {mid: STOCK for mid, _ in PROXY_MODULES.values() if mid != "proxy_module"}
    loaded["proxy_module"] = DROPIN
    edited = FileState("file", "644", "root", "root", hashlib.sha256(b"# edited\n").hexdigest())
    change = dropin().plan(redhat(loaded, {DROPIN: edited}))
    assert change.reason == "content differs"
    assert change.new_content.decode().splitlines()[1:] == ["LoadModule proxy_module modules/mod_proxy.so"]


def test_redhat_all_loaded_by_the_package_and_no_dropin_changes_nothing():
    loaded = {mid: STOCK for mid, _ in PROXY_MODULES.values()}
    change = dropin().plan(redhat(loaded))
    assert (change.changed, change.reason) == (False, "all loaded by the package's conf.modules.d")


def test_redhat_before_httpd_is_installed_plans_nothing():
    f = Facts(os={"ID": "centos"}, platform=REDHAT)
    change = dropin().plan(f)
    assert (change.changed, change.reason) == (False, "httpd not installed yet: its 00-proxy.conf loads them")
