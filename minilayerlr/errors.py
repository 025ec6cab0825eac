"""The package's own exception types; this module imports nothing, so every module may use it."""
from __future__ import annotations


class UserError(ValueError):
    """An error caused by the user's input (an argument, a file): the command line prints it as one line.

    A ValueError, so library callers that catch bad values catch it too.
    """


class MissingFileError(UserError, FileNotFoundError):
    """A file the user named (a checkpoint, a data file) does not exist.

    Both a UserError (callers that catch bad input catch it, and its message
    names the argument) and a FileNotFoundError (what Python raises for a
    missing file, so existing ``except FileNotFoundError`` code keeps working).
    """


class NonFiniteError(ValueError):
    """A NaN or Inf where a finite number is needed (inputs, gradients, an overflowing step).

    A ValueError, so callers that catch bad values catch it too; the training
    loop catches it to stop a diverging run cleanly.
    """
