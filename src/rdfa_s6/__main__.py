"""``python -m rdfa_s6`` (and ``torchrun -m rdfa_s6``) runs the command line."""
import sys

from .cli import main

sys.exit(main())
