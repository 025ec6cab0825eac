"""``python -m minilayerlr ...`` is the ``minilayerlr`` command."""
import sys

from minilayerlr.cli import main

if __name__ == "__main__":  # importing this module (pytest --doctest-modules does) runs nothing
    sys.exit(main())
