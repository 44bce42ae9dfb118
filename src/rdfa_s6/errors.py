"""Errors a user can fix: the command line prints them as one line and exits with status 2."""
from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (a file, a field, an option). The message names what is wrong and what was expected."""


class DataError(UserError):
    """A data file (annotations, features, predictions, checkpoint) is missing or malformed."""


class ConfigError(UserError):
    """A configuration key is unknown or has the wrong type or value."""
