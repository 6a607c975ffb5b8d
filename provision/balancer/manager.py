"""balancer-manager on a proxy's loopback: read its page, and set or clear a member's Drain.

Which format to read. httpd 2.4.6 (CentOS 7) offers two: the HTML page and, with ``?xml``, an
XML one (modules/proxy/mod_proxy_balancer.c at tag 2.4.6, balancer_handler: ``allowed[] = { "w",
"b", "nonce", "xml" }``). Its XML ``<httpd:status>`` names only Disabled, Error, Stopped, Standby
or OK: a drained member shows as OK there. The HTML Status cell prints every flag through
ap_proxy_parse_wstatus (proxy_util.c: "Init ", "Ign ", "Drn ", "Dis ", "Err ", "Stby ", ... then
"Ok "), and its worker table has the same columns from 2.4.6 to 2.4.62 (Worker URL, Route,
RouteRedir, Factor, Set, Status, Elected, Busy, Load, To, From; 2.4.21+ may add health-check
columns after them). Current releases also drop every parameter, ``xml`` included, from a request
without a Referer naming the server (balancer_handler at 2.4.62, APLOGNO(10187)): Debian 12's
httpd answered ``?xml=1`` with the HTML page on the lab. So the HTML page is parsed, on every version.
Differences handled: 2.4.6 prints Factor as "%d" and links with "&nonce=", 2.4.62 prints "%.2f"
and "&amp;nonce=". Drain ('N', "Draining Mode") exists in 2.4.6: byrequests, bytraffic and
bybusyness skip a member with PROXY_WORKER_IS_DRAINING (mod_lbmethod_*.c at 2.4.6).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass, field

MANAGER = "http://127.0.0.1/balancer-manager"
# Status words, in the order the issue and the page use them; the member's state is the first
# one that applies, so a drained member is "Drn" although its page also says "Ok". "HcFl": its
# health checks took it out (mod_proxy_hcheck's flag C, httpd 2.4.21+).
STATES = ("Dis", "Stop", "Err", "HcFl", "Drn", "Stby", "Ok")

_BALANCER_RE = re.compile(r"<h3>LoadBalancer Status for <a [^>]*>balancer://([^<]+)</a>")
_CELL = r"<td>((?:(?!</td>).)*)</td>"      # a cell never runs past its </td>: linear on any page
_ROW_RE = re.compile(
    r"<tr>\s*<td><a href=\"[^\"]*\">(?:<i>)?([^<]*)(?:</i>)?</a></td>" + _CELL * 10, re.S)
_NONCE_RE = re.compile(r"nonce=([0-9a-f-]+)")
_NUMBER_RE = re.compile(r"-?[0-9]{1,18}")        # signed: the 2.4.6 page (fixture) shows a Load of -1


class ManagerError(Exception):
    """balancer-manager's page could not be read."""


@dataclass
class WorkerRow:
    """One worker row of balancer-manager's page (a member of one balancer, as Apache shows it)."""
    balancer: str
    url: str            # http://10.123.0.12:8081
    route: str
    factor: str
    lbset: int
    flags: list[str] = field(default_factory=list)     # "Init", "Drn", "Ok", ...
    elected: int = 0
    busy: int = 0
    load: int = 0
    sent: str = ""      # the "To" column (bytes sent, apr_strfsize)
    received: str = ""

    @property
    def state(self) -> str:
        return next((s for s in STATES if s in self.flags), " ".join(self.flags) or "?")

    @property
    def address(self) -> str:
        return address_of(self.url)

    def as_dict(self) -> dict:
        return {**asdict(self), "state": self.state, "address": self.address}


def parse(page: str) -> list[WorkerRow]:
    """Every member of every balancer on the page, in page order."""
    # lazy: only the commands that read the page need html (a deploy only writes routes)
    import html
    if "Load Balancer Manager" not in page:
        raise ManagerError("not a balancer-manager page")
    members = []
    starts = [(m.start(), m.group(1)) for m in _BALANCER_RE.finditer(page)]
    for i, (start, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(page)
        for row in _ROW_RE.finditer(page, start, end):
            url, route, _redir, factor, lbset, status, elected, busy, load, sent, received = (
                html.unescape(c.strip()) for c in row.groups())
            numbers = {"Set": lbset, "Elected": elected, "Busy": busy, "Load": load}
            bad = next((k for k, v in numbers.items() if not _NUMBER_RE.fullmatch(v)), None)
            if bad:         # the host's page: read, never trusted
                raise ManagerError(f"balancer-manager's {bad} cell for {url[:80]!r} is {numbers[bad][:40]!r}, "
                                   "not a number")
            members.append(WorkerRow(name, url, route, factor, int(lbset), status.split(), int(elected),
                                  int(busy), int(load), sent, received))
    return members


def nonce(page: str) -> str | None:
    m = _NONCE_RE.search(page)
    return m.group(1) if m else None


def read_command(sites=()) -> str:
    """Shell text printing the page (exit 0 even if Apache is down: the parser says so). With
    ``sites`` (the long form's server names), each site's page: a site's balancers live in its
    own vhost, and balancer-manager shows those of the vhost that answers (chosen by Host)."""
    if not sites:
        return f"curl -s --max-time 5 {MANAGER} || true"
    return (f"for site in {' '.join(shlex.quote(s) for s in sites)}; do "
            f"curl -s --max-time 5 -H \"Host: $site\" {MANAGER} || true; echo; done")


AFTER = "@@@ balancer-manager after"


def address_of(url: str) -> str:
    """A member's address:port, whatever its scheme (a pool's WebSocket twin has ws:// members)."""
    return url.split("://", 1)[-1].rstrip("/")


def of_urls(members: list[WorkerRow], urls: list[str]) -> list[WorkerRow]:
    """The members at those urls' addresses, in every balancer (each pool, and its WebSocket twin)."""
    wanted = {address_of(u) for u in urls}
    return [m for m in members if m.address in wanted]


def set_drain_script(urls: list[str], drain: bool, before_change: str = "", sites=()) -> str:
    """Set (or clear) Drain on the members at those urls' addresses in every balancer of the page,
    printing the page before and after (split by the AFTER line). Each worker link of the page
    names its balancer, the worker and that balancer's nonce (a balancer-manager request must
    carry the nonce of the balancer it edits: balancer_handler, 2.4.6 on); from later 2.4
    releases on, it also wants a Referer naming itself (safe_referer() in mod_proxy_balancer.c
    at 2.4.62; absent at 2.4.6). ``before_change``: shell run once the page answered, before the
    first change. ``sites``: the long form's server names, each site's vhost in turn (read_command)."""
    if sites:
        return _set_drain_script_per_site(urls, drain, before_change, sites)
    patterns = "|".join(f"*://{shlex.quote(address_of(u))}" for u in urls)
    post = (f"curl -sf --max-time 5 -o /dev/null -H {shlex.quote('Referer: ' + MANAGER)} "
            f"--data \"w=$w&b=$b&w_status_N={1 if drain else 0}&nonce=$n\" {MANAGER}")
    lines = [
        "set -e",
        f"page=$(curl -sf --max-time 5 {MANAGER})",
        'printf \'%s\\n\' "$page"',
        # one worker link a row: "?b=NAME&w=URL&nonce=N" (2.4.62 writes &amp;)
        'links=$(printf \'%s\\n\' "$page" | sed -n \'s/.*?b=\\([^&"]*\\)&\\(amp;\\)\\{0,1\\}w=\\([^&"]*\\)'
        '&\\(amp;\\)\\{0,1\\}nonce=\\([0-9a-f-]*\\)".*/\\1 \\3 \\5/p\')',
        '[ -n "$links" ] || { echo "balancer-manager lists no member" >&2; exit 1; }',
        *([before_change.rstrip("\n")] if before_change else []),
        'printf \'%s\\n\' "$links" | while read -r b w n; do',
        f'  case "$w" in {patterns}) {post} ;; esac',
        "done",
        f"echo {shlex.quote(AFTER)}",
        f"curl -sf --max-time 5 {MANAGER}",
    ]
    return "\n".join(lines) + "\n"


LINKS_SED = ('sed -n \'s/.*?b=\\([^&"]*\\)&\\(amp;\\)\\{0,1\\}w=\\([^&"]*\\)'
             '&\\(amp;\\)\\{0,1\\}nonce=\\([0-9a-f-]*\\)".*/\\1 \\3 \\5/p\'')


def _set_drain_script_per_site(urls: list[str], drain: bool, before_change: str, sites) -> str:
    """set_drain_script over each site's vhost: the same links and posts, with that site's Host
    (and a Referer naming it, which safe_referer() compares with the request's host name)."""
    names = " ".join(shlex.quote(s) for s in sites)
    patterns = "|".join(f"*://{shlex.quote(address_of(u))}" for u in urls)
    post = (f"curl -sf --max-time 5 -o /dev/null -H \"Host: $site\" -H \"Referer: http://$site/balancer-manager\" "
            f"--data \"w=$w&b=$b&w_status_N={1 if drain else 0}&nonce=$n\" {MANAGER}")
    lines = [
        "set -e",
        "links=",
        f"for site in {names}; do",
        f'  page=$(curl -sf --max-time 5 -H "Host: $site" {MANAGER})',
        '  printf \'%s\\n\' "$page"',
        f'  found=$(printf \'%s\\n\' "$page" | {LINKS_SED} | sed "s/^/$site /")',
        '  links=$(printf \'%s\\n%s\' "$links" "$found")',
        "done",
        '[ -n "$(printf \'%s\' "$links" | tr -d \'[:space:]\')" ] || { echo "balancer-manager lists no member" >&2; exit 1; }',
        *([before_change.rstrip("\n")] if before_change else []),
        'printf \'%s\\n\' "$links" | while read -r site b w n; do',
        '  [ -n "$site" ] || continue',
        f'  case "$w" in {patterns}) {post} ;; esac',
        "done",
        f"echo {shlex.quote(AFTER)}",
        f"for site in {names}; do curl -sf --max-time 5 -H \"Host: $site\" {MANAGER}; echo; done",
    ]
    return "\n".join(lines) + "\n"


def split_before_after(output: str) -> tuple[str, str]:
    before, _, after = output.partition(AFTER + "\n")
    return before, after
