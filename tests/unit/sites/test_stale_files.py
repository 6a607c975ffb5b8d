"""A site taken out of the inventory leaves no routes file behind: the listing fact (read by the
facts script, run here for real by sh) names our site-*.inc files, the plan removes those no longer
rendered, after the vhost stops including them, with configtest and a way back."""
import subprocess
from pathlib import Path

import pytest

from provision import facts
from provision.facts import FactRequest
from provision.inventory import load
from provision.resources import StaleFiles
from provision.roles import proxy
from test_debian_releases import Opts

FIX = Path(__file__).resolve().parents[2] / "fixtures"
ROOT = Path(__file__).resolve().parents[3]
FOLDER = "/etc/apache2/provision"
APP, API, OLD = (f"{FOLDER}/site-{n}.inc" for n in ("app.example.test", "api.example.test", "old.example.test"))


def run(script):
    return subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, timeout=60)


def test_listing_fact_names_the_matching_files_only(tmp_path):
    for name in ("site-a.inc", "site-b.inc", "proxy-routes.inc", "site-c.inc.provision-bak"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / "site-dir.inc").mkdir()
    folder = tmp_path / "with space"
    folder.mkdir()
    (folder / "site-x.inc").write_text("x\n")
    proc = run(facts.script(FactRequest(listings={f"{tmp_path}/site-*.inc", f"{folder}/site-*.inc",
                                                  f"{tmp_path}/none-*.conf"})))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert facts.parse(proc.stdout).listed == {f"{tmp_path}/site-a.inc", f"{tmp_path}/site-b.inc",
                                               f"{folder}/site-x.inc"}


@pytest.mark.parametrize("pattern", ["relative/site-*.inc", "/etc/site-$(reboot)*.inc", "/etc/site-*;x.inc",
                                     "/etc/apache2/*/x.inc"])
def test_listing_refuses_what_is_not_a_folder_and_a_name_glob(pattern):
    with pytest.raises(ValueError):
        facts.script(FactRequest(listings={pattern}))


def deployed_proxy_facts(*listed):
    """Debian 12's captured facts of a deployed proxy, with the listing section the plan asks for."""
    text = (FIX / "debian12/facts-proxy.txt").read_text().rstrip("\n")
    return facts.parse(text + f"\n{facts.MARK}listing\n" + "".join(f"{p}\n" for p in listed))


def stale_step(inventory_file):
    inventory = load(ROOT / inventory_file)
    f = deployed_proxy_facts()
    steps = proxy.resources(inventory.hosts["proxy"], f.platform, inventory, Opts())
    [step] = [s for s in steps if isinstance(s, StaleFiles)]
    labels = [s.label for s in steps]
    assert labels.index(step.label) > labels.index("file /etc/apache2/sites-available/provision-proxy.conf")
    assert f"{FOLDER}/site-*.inc" in step.request().listings
    return step


def test_removed_site_routes_file_goes_and_the_others_stay():
    step = stale_step("inventory/sites.yml")
    change = step.plan(deployed_proxy_facts(APP, API, OLD))
    assert change.changed and change.reason == f"removed {OLD}"
    assert change.script == f"mv -f {OLD} {OLD}.provision-bak"
    assert change.rollback == f"mv -f {OLD}.provision-bak {OLD}" and change.commit == f"rm -f {OLD}.provision-bak"
    assert change.validate == proxy.VALIDATE and change.notify == (proxy.RELOAD,)
    assert not step.plan(deployed_proxy_facts(APP, API)).changed


def test_back_to_the_short_form_removes_every_site_file():
    step = stale_step("inventory/lab.yml")
    change = step.plan(deployed_proxy_facts(APP, API))
    assert change.reason == f"removed {API}, {APP}"
    assert not step.plan(deployed_proxy_facts()).changed       # today's lab: nothing listed, nothing to do
