"""Sub-commands of the ``rdfa-s6`` command line; see :mod:`rdfa_s6.cli`."""
