"""`python -m converters.validate --worker SPEC`: the validation worker's command line (users run `ckconvert validate`)."""

import sys

if len(sys.argv) == 3 and sys.argv[1] == "--worker":
    from .worker import worker_main

    sys.exit(worker_main(sys.argv[2]))
sys.exit("usage: ckconvert validate (this module's command line is the validation worker's)")
