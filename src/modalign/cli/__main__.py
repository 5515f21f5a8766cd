"""`python -m modalign.cli ...` (what torchrun runs): the same as the `modalign` command."""

import sys

from . import main

sys.exit(main())
