"""``from cocaine.worker import Worker``."""

from .worker import Worker

__all__ = ["Worker"]
