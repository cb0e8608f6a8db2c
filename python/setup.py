"""Build hook: ship ``elliptics-cocaine-fallback.pth`` at the top of site-packages.

The .pth line registers the ``cocaine`` fallback finder at interpreter start (see
``cocaine_compat/__init__.py``). Everything else is declared in pyproject.toml.
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_NAME = "elliptics-cocaine-fallback.pth"


class BuildWithPth(build_py):
    def run(self):
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        self.copy_file(os.path.join(here, PTH_NAME), os.path.join(self.build_lib, PTH_NAME))


setup(cmdclass={"build_py": BuildWithPth})
