"""Ctrl-C while the package is still importing: one line on stderr, not an import traceback.

``minilayerlr/__init__.py`` calls :func:`begin` first and :func:`end` last. In
between, a KeyboardInterrupt that reaches the top level (the user pressed
Ctrl-C while ``minilayerlr`` or ``python -m minilayerlr`` was starting) is
reported by the hook below as one line; the interpreter still exits as
interrupted by SIGINT (status 130 in a shell). Any other exception goes to the
previous hook unchanged, and ``end`` restores that hook, so nothing changes
once the package is imported. This module imports only ``os`` and ``sys``.
"""
import os
import sys

_previous = None


def _interrupted(value) -> bool:
    """True if ``value`` is a KeyboardInterrupt or was caused by one.

    A Ctrl-C while a compiled extension initialises (scipy's HiGHS wrapper, for
    one) reaches the top as ``ImportError: initialization failed`` whose cause
    is the KeyboardInterrupt.
    """
    seen = set()
    while value is not None and id(value) not in seen:
        if isinstance(value, KeyboardInterrupt):
            return True
        seen.add(id(value))
        value = value.__cause__ or value.__context__
    return False


def _hook(kind, value, traceback):
    if _interrupted(value):
        print("minilayerlr: interrupted while starting", file=sys.stderr)
        if not issubclass(kind, KeyboardInterrupt):
            # the interpreter would exit 1 for the ImportError; an interrupt is 130 (128 + SIGINT),
            # and nothing has started that needs cleaning up
            sys.stderr.flush()
            os._exit(130)
        return
    (_previous or sys.__excepthook__)(kind, value, traceback)


def begin() -> None:
    """Install the one-line hook for the duration of the package import."""
    global _previous
    if sys.excepthook is not _hook:
        _previous = sys.excepthook
        sys.excepthook = _hook


def end() -> None:
    """Restore the previous hook."""
    if sys.excepthook is _hook:
        sys.excepthook = _previous or sys.__excepthook__
