"""``pip install ./python`` into a fresh venv gives ``elliptics`` and ``cocaine.worker``."""

import pathlib
import shutil
import subprocess
import sys

PYTHON_DIR = pathlib.Path(__file__).resolve().parents[1]

PROBE = """
import elliptics, cocaine, cocaine.worker
from cocaine.worker import Worker
assert cocaine.worker.Worker is Worker
assert Worker.__module__ == "cocaine.worker.worker", Worker.__module__
cfg = elliptics.Config()
node = elliptics.Node(elliptics.Logger("/dev/null", 0), cfg)
s = elliptics.Session(node)
assert s.timeout == 5
print("OK", cocaine.__file__)
"""


def _run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_pip_install_into_a_venv_provides_both_modules(tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    # Install from a copy so the in-tree build leaves no build/ or egg-info behind.
    source = tmp_path / "python"
    shutil.copytree(PYTHON_DIR, source, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    _run([str(py), "-m", "pip", "install", "--quiet", str(source)])
    out = _run([str(py), "-c", PROBE], cwd=str(tmp_path))
    assert out.startswith("OK") and "cocaine_compat" in out
    disabled = subprocess.run([str(py), "-c", "import cocaine"], cwd=str(tmp_path),
                              capture_output=True, text=True,
                              env={"ELLIPTICS_COCAINE_FALLBACK": "0", "PATH": "/usr/bin:/bin"})
    assert disabled.returncode != 0 and "ModuleNotFoundError" in disabled.stderr
