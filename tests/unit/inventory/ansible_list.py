"""`ansible-inventory` on many inventories from one process. stdin: a JSON list of argument
lists (each as for ansible-inventory, e.g. ["-i", PATH, "--list"], or for ansible's ad-hoc
command when the list starts with "ansible": ["ansible", "all", "-i", PATH, "--list-hosts"]);
stdout: a JSON list of {"rc": N, "out": "...", "stderr": "..."}, in the same order.

Ansible is imported once (its start-up is most of the cost); each inventory then runs
ansible-inventory's own entry point in a freshly forked child, so no state is shared between them.
Run it from an empty folder with HOME set to one, so no ansible.cfg or playbook vars are read.
"""
import json
import os
import sys
import tempfile

from ansible.cli.adhoc import main as adhoc
from ansible.cli.inventory import main

PARALLEL = os.cpu_count() or 2


def start(args: list[str], folder: str, index: int) -> int:
    out, err = os.path.join(folder, f"{index}.json"), os.path.join(folder, f"{index}.err")
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 2)
        if args[0] == "ansible":
            os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
            adhoc(args)
        else:
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            main(["ansible-inventory", *args, "--output", out])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdout.flush()
        os._exit(code)


def run(commands: list[list[str]]) -> list[dict]:
    results: list = [None] * len(commands)
    with tempfile.TemporaryDirectory() as folder:
        running: dict[int, int] = {}
        todo = list(enumerate(commands))
        while todo or running:
            while todo and len(running) < PARALLEL:
                index, args = todo.pop(0)
                running[start(args, folder, index)] = index
            pid, status = os.wait()
            index = running.pop(pid)
            out = os.path.join(folder, f"{index}.json")
            with open(os.path.join(folder, f"{index}.err")) as f:
                stderr = f.read()
            text = None
            if os.path.exists(out):
                with open(out) as f:
                    text = f.read()
            results[index] = {"rc": os.waitstatus_to_exitcode(status), "out": text, "stderr": stderr[-2000:]}
    return results


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)
