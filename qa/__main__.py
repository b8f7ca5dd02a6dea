"""`python -m qa`."""
import sys

from qa.cli import run

sys.exit(run())
