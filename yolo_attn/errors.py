"""The exception family for user mistakes: the CLI prints the message as one line and exits 2.

This is the lowest module of the package (it imports nothing from it): every layer raises these.
"""


class UserError(Exception):
    """Bad input from the user (a file, a flag, a YAML row); the message says what and where."""


class ModelConfigError(UserError, ValueError):
    """A model YAML that cannot be built; the message names the layer and what to do."""


def is_int(x) -> bool:
    """A whole number as YAML and JSON give it: ``int`` but not ``bool`` (``True`` is an ``int`` in Python)."""
    return isinstance(x, int) and not isinstance(x, bool)


def is_number(x) -> bool:
    """An ``int`` or ``float`` that is not a ``bool``."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)
