"""wait_in_rotation: a rolling update moves on only once the health checks let the member back in."""
from pathlib import Path
from types import SimpleNamespace

from provision.balancer.drain import wait_in_rotation
from provision.transport import Result

PAGES = Path(__file__).parents[2] / "fixtures" / "balancer-manager"
HELD_OUT = (PAGES / "debian12-hcheck.html").read_text()     # web2's 8081 member: Init HcFl, in web and web.ws
BACK = (PAGES / "debian12-ok.html").read_text()
WEB2 = "http://10.123.0.12:8081"
PROXY = SimpleNamespace(name="proxy", vars={})


class Pages:
    """A proxy whose balancer-manager shows ``pages`` in turn, then the last one again."""

    def __init__(self, *pages):
        self.pages, self.reads = list(pages), 0

    def get(self, host):
        return self

    def run_script(self, script, timeout=0):
        page = self.pages[min(self.reads, len(self.pages) - 1)]
        self.reads += 1
        return Result(0, page, "")


def test_it_waits_while_the_checks_hold_the_member_out_and_returns_once_they_let_it_in():
    proxy = Pages(HELD_OUT, HELD_OUT, BACK)
    [outcome] = wait_in_rotation([PROXY], [WEB2], proxy, timeout=10, poll=0)
    assert outcome.ok and proxy.reads == 3
    assert [m.state for m in outcome.members] == ["Ok"]


def test_a_member_the_checks_keep_out_fails_that_proxy_in_one_line():
    [outcome] = wait_in_rotation([PROXY], [WEB2], Pages(HELD_OUT), timeout=0, poll=0)
    assert not outcome.ok
    assert outcome.error == f"health checks still hold out {WEB2} after 0 s"   # in web and web.ws: named once


def test_other_members_held_out_are_not_waited_for():
    proxy = Pages(HELD_OUT)
    [outcome] = wait_in_rotation([PROXY], ["http://10.123.0.11:8080"], proxy, timeout=0, poll=0)
    assert outcome.ok and proxy.reads == 1
