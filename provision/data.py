"""Where the files that ship beside the code are: the templates and the verify suite. An install
carries them inside the package (setup.py maps files/ to provision/templates/ and tests/infra/ to
provision/infra/); a checkout keeps them at its top level."""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def shipped(installed: str, checkout: str) -> Path:
    """The installed copy when there is one, else the checkout's folder."""
    inside = HERE / installed
    return inside if inside.is_dir() else HERE.parent / checkout


TEMPLATES = shipped("templates", "files")
SUITE = shipped("infra", "tests/infra")
