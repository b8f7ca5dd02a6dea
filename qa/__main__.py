"""`python -m qa`."""
import sys

from qa.serve.cli import run

sys.exit(run())
