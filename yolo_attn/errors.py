"""The exception family for user mistakes: the CLI prints the message as one line and exits 2."""


class UserError(Exception):
    """Bad input from the user (a file, a flag, a YAML row); the message says what and where."""
