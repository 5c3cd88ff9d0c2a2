"""Each top-level package imports first in a fresh interpreter (no circular import between the
kernel, the plug-ins and what sits above them)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", ["search_spaces", "accelerators", "automl", "cli"])
def test_each_package_imports_first_in_a_fresh_interpreter(module):
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
