"""Errors a user can cause; the CLI prints them as one clear message and exits with code 2."""


class UserError(Exception):
    """Bad input from the user (file, name, option): reported without a traceback."""


class FileFormatError(UserError):
    """A file marlbench reads is not what it claims to be: unreadable, not UTF-8, truncated,
    or off its schema. Readers that can repair (``run`` re-runs the job) catch this one."""
