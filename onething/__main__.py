"""`python -m onething` runs the CLI."""

from .cli import main

main()
