"""`python -m inspector` runs ckinspect."""

from .cli import entry

entry()
