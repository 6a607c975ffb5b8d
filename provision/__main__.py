"""`python -m provision`: the `provision` command."""
from .cli.program import main

main()
