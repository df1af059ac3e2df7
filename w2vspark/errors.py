"""Errors caused by the user's input or settings: jobs print them as one line and exit with status 2."""


class UserError(Exception):
    """Bad input, settings or output location; the message says what and where."""


class InputError(UserError, ValueError):
    """Input that cannot be read or used as it is."""
