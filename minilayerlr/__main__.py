"""``python -m minilayerlr ...`` is the ``minilayerlr`` command."""
import sys

from minilayerlr.cli import main

sys.exit(main())
