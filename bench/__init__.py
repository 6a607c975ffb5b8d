"""Dev tooling beside the product, never imported by it: the deploy bench (speed.py), the peers
doing the same job (peers/), mutation testing (mutation.py), the test-suite runner (suite.py), and
their Invoke tasks (tasks.py, collected into the project's tasks.py)."""
