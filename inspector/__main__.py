"""`python -m inspector` runs ckinspect."""

import sys

from .cli import main

sys.exit(main())
