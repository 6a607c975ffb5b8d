"""Past one controller: `--shard K/N` and `provision report merge`.

N runs of the same command, each with its own K (a CI matrix, a Kubernetes Indexed Job's
JOB_COMPLETION_INDEX, AWX-style slicing), cover the selected hosts exactly once: a host belongs
to shard K when the SHA-256 of its name, as a number, is K-1 modulo N. Stable across machines,
Python versions and inventory order; nothing is shared between the runs. Each run's --json
names the hosts of the whole selection in recap order ("order"), so that merging the shards'
files gives the recap, --json and exit code one unsharded run would have.

A proxy's switch waits for the backends of its own run only: run all the backend shards first
(`--limit backends`), then the proxies (`--limit proxies`), and each proxy checks that every
backend it routes to answers before it switches.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from . import report
from .engine import HostResult, StepResult
from .errors import UserError

SPEC = re.compile(r"^(\d+)/(\d+)$")


class ShardError(UserError):
    """A --shard value or a file to merge that cannot be used."""


def parse(spec: str) -> tuple[int, int]:
    """"K/N" -> (K, N), with 1 <= K <= N."""
    m = SPEC.match(str(spec).strip())
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ShardError(f"--shard {spec}: expected K/N with 1 <= K <= N, e.g. 1/4 (the first of four shards)")
    return int(m.group(1)), int(m.group(2))


def of(name: str, count: int) -> int:
    """The shard (1..count) a host name belongs to."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count + 1


def pick(names, shard: tuple[int, int] | None) -> list:
    """The names of shard K of N, in their order (None: all of them)."""
    if shard is None:
        return list(names)
    k, n = shard
    return [name for name in names if of(name, n) == k]


# -- report merge -----------------------------------------------------------------------------------

def results_of(doc: dict) -> list[HostResult]:
    """A deploy's --json back into its host results (report.to_json's inverse)."""
    out = []
    for name, h in doc.get("hosts", {}).items():
        steps = [StepResult(s["step"], s["status"], s.get("reason", ""), s.get("output", ""), s.get("diff", ""))
                 for s in h.get("steps", [])]
        error = h.get("error")
        if h.get("failed") and error is None and not any(s.status == "failed" for s in steps):
            error = "failed"
        out.append(HostResult(name, steps, unreachable=h.get("unreachable_reason") or
                              ("unreachable" if h.get("unreachable") else None), error=error))
    return out


def read(path: str) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ShardError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ShardError(f"{path}: not a deploy --json file ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("hosts"), dict):
        raise ShardError(f"{path}: not a deploy --json file (no 'hosts')")
    return doc


def merge(docs: list[dict]) -> tuple[list[HostResult], dict]:
    """The shards' results as one run's: each host once (a host in both stages, backend and
    proxy, has its two parts added up), in the order the runs' "order" gives (the unsharded
    recap order; the files' own order where a file has none); and the extra --json fields."""
    order: list[str] = []
    for doc in docs:
        for name in list(doc.get("order") or []) + list(doc["hosts"]):
            if name not in order:
                order.append(name)
    parts = [{r.host: r for r in results_of(doc)} for doc in docs]
    merged = {r.host: r for r in report.merge(parts)}
    extra = {"order": [n for n in order if n in merged],
             "ssh": {}, "smoke": {},
             "shards": [{"elapsed": doc.get("elapsed"), "shard": doc.get("shard")} for doc in docs]}
    for doc in docs:
        for key in ("ssh", "smoke"):
            extra[key].update(doc.get(key) or {})
    return [merged[n] for n in order if n in merged], extra


def main(paths: list[str], json_path: str | None = None, reporter=None) -> int:
    """`provision report merge`: one recap and one exit code from the shards' --json files."""
    if not paths:
        raise ShardError("report merge: name the --json files of the runs to merge")
    reporter = reporter or report.Reporter()
    results, extra = merge([read(p) for p in paths])
    reporter.recap(results)
    if json_path:
        Path(json_path).write_text(report.to_json(results, extra))
    return report.exit_code(results)
