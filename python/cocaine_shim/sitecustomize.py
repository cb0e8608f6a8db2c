"""Lets the PyPI ``cocaine==0.12.14.5`` worker import on Python 3.10+.

That release pins tornado 4.5.3, whose ``httputil`` uses ``collections.MutableMapping``;
Python 3.10 removed those aliases (they live in ``collections.abc``). Put this directory on
the worker's ``PYTHONPATH`` (for a server-side app: the manifest's ``environment``) and the
interpreter runs this file at start, copying the missing names back onto ``collections``.
The framework itself stays unmodified.
"""

import collections
import collections.abc

for _name in collections.abc.__all__:
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))
