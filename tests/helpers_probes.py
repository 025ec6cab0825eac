"""Shared by the hostile-probe test files: a deadline per probe and the one-line refusal check."""
import signal

import pytest

from minilayerlr import cli


@pytest.fixture(autouse=True)
def _deadline():
    """A probe that would run for ever (or block on a FIFO) fails instead."""
    def expired(*_):
        raise TimeoutError("probe took more than 120 s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _refused(capsys, argv, *needles):
    """Run the command line; assert exit 2 with one line naming every needle, no traceback."""
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err
