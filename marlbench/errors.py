"""Errors a user can cause; the CLI prints them as one clear message and exits with code 2."""


class UserError(Exception):
    """Bad input from the user (file, name, option): reported without a traceback."""
