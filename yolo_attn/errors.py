"""The exception family for user mistakes: the CLI prints the message as one line and exits 2.

This is the lowest module of the package (it imports nothing from it): every layer raises these.
"""

import numbers


class UserError(Exception):
    """Bad input from the user (a file, a flag, a YAML row); the message says what and where."""


class OptionError(UserError, ValueError):
    """A bad value of one option of a library call (``layers``, ``method``, ``source``): the message
    is ``prefix + name + ' ' + detail`` with the option's name as a Python caller knows it
    (``layers [99]: ...``); ``cli_message()`` puts the command line's flag there (``--layers [99]: ...``),
    which is how the CLI prints it."""

    def __init__(self, option: str, detail: str, prefix: str = ''):
        self.option, self.detail, self.prefix = option, detail, prefix
        super().__init__(f'{prefix}{option} {detail}')

    def cli_message(self) -> str:
        return f"{self.prefix}--{self.option.replace('_', '-')} {self.detail}"


class ModelConfigError(UserError, ValueError):
    """A model YAML that cannot be built; the message names the layer and what to do."""


def is_int(x) -> bool:
    """A whole number (``int``, numpy integers), not a ``bool`` (``True`` is an ``int`` in Python).
    The one strict-integer check of the package: YAML rows, block arguments, generator settings."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def is_number(x) -> bool:
    """A real number (``int``, ``float``, numpy scalars), not a ``bool``."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)
