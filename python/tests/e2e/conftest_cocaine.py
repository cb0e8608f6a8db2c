"""The real PyPI ``cocaine==0.12.14.5`` framework for worker tests, in its own venv.

``real_cocaine_env()`` returns the manifest ``environment`` that runs a tutorial app under
that framework: ``PATH`` starts with the venv's ``bin`` (the app's ``#!/usr/bin/env python``
finds the venv interpreter), and ``PYTHONPATH`` holds this repository's ``python/`` (for
``import elliptics``) and ``python/cocaine_shim`` (the ``collections`` sitecustomize that
tornado 4.5.3 needs on Python 3.10+). ``ELLIPTICS_COCAINE_FALLBACK=0`` keeps our own
``cocaine`` fallback out of the picture.

The venv is ``$COCAINE_VENV`` when set, else ``target/py-cocaine-venv`` under the
repository root, created with ``python3 -m venv`` and ``pip install cocaine==0.12.14.5`` on
first use (this needs PyPI). A failed install fails the test; ``ELLIPTICS_COCAINE_PYPI=0``
skips the real-framework tests instead.
"""

import os
import pathlib
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

COCAINE_REQUIREMENT = "cocaine==0.12.14.5"
SHIM_DIR = REPO_ROOT / "python" / "cocaine_shim"
_PROBE = "import cocaine.worker, elliptics"


def _venv_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("COCAINE_VENV") or REPO_ROOT / "target/py-cocaine-venv")


def _environment(venv: pathlib.Path) -> dict:
    return {
        "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONPATH": f"{REPO_ROOT / 'python'}:{SHIM_DIR}",
        "ELLIPTICS_COCAINE_FALLBACK": "0",
    }


def _usable(venv: pathlib.Path, env: dict) -> bool:
    python = venv / "bin" / "python"
    if not python.is_file():
        return False
    probe = subprocess.run([str(python), "-c", _PROBE], env=dict(os.environ, **env),
                           capture_output=True, timeout=60)
    return probe.returncode == 0


def _create(venv: pathlib.Path) -> None:
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
              "--disable-pip-version-check", COCAINE_REQUIREMENT]]
    for step in steps:
        out = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            pytest.fail(f"cannot prepare the real cocaine venv: {' '.join(step)}\n"
                        f"{out.stdout}\n{out.stderr}")


def real_cocaine_env() -> dict:
    """The manifest ``environment`` for a worker on real PyPI cocaine (venv made if needed)."""
    if os.environ.get("ELLIPTICS_COCAINE_PYPI") == "0":
        pytest.skip("ELLIPTICS_COCAINE_PYPI=0: real cocaine framework tests disabled")
    venv = _venv_dir()
    env = _environment(venv)
    if not _usable(venv, env):
        _create(venv)
        if not _usable(venv, env):
            pytest.fail(f"{venv}: '{_PROBE}' still fails after installing "
                        f"{COCAINE_REQUIREMENT}")
    return env
