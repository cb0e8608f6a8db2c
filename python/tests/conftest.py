"""Test setup: import the package from the source tree and enable the cocaine fallback."""

import pathlib
import sys

PYTHON_DIR = pathlib.Path(__file__).resolve().parents[1]
TESTS_DIR = pathlib.Path(__file__).resolve().parent
for p in (str(PYTHON_DIR), str(TESTS_DIR)):
    if p not in sys.path:
        sys.path.insert(0, p)
