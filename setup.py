"""Two folders ship inside the package although the checkout keeps them outside it: the templates
(files/) as provision/templates/ and the verify suite (tests/infra/) as provision/infra/
(setuptools' package_dir mapping), so that a non-editable install renders and verifies from any
folder. provision/data.py finds them in either place. Everything else is in setup.cfg."""
from setuptools import find_packages, setup

DATA = {"provision.templates": "files", "provision.infra": "tests/infra"}

setup(packages=find_packages(include=["provision", "provision.*"]) + list(DATA),
      package_dir=DATA,
      package_data={name: ["*"] for name in DATA})
