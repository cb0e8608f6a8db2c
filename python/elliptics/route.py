"""Client route table: per-group sorted ring points and the owner search.

Owns the mapping (group, key id) -> (connection, backend). A key is owned by the ring point
with the greatest value <= key; a key below every point wraps to the largest point. Ids are
compared as unsigned byte strings (memcmp order), which is Python's ``bytes`` order.
Does no I/O; the network layer adds and removes entries as peers appear and vanish.
"""

import bisect
import threading
from dataclasses import dataclass
from typing import Dict, Hashable, List, Optional, Tuple

from .wire import ID_SIZE_BYTES, BackendIds


@dataclass(frozen=True)
class RouteEntry:
    point: bytes
    owner: Hashable  # the connection object (opaque to the table)
    backend_id: int
    group_id: int


class DuplicateRouteError(ValueError):
    """Every ring point of a backend is already present in the group (-EEXIST)."""


class RouteTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: Dict[int, List[bytes]] = {}
        self._entries: Dict[int, List[RouteEntry]] = {}

    def add_backend(self, owner: Hashable, backend: BackendIds) -> int:
        """Insert a backend's points; duplicates are ignored. Returns how many were added."""
        added = 0
        with self._lock:
            points = self._points.setdefault(backend.group_id, [])
            entries = self._entries.setdefault(backend.group_id, [])
            for raw in backend.ids:
                point = bytes(raw).ljust(ID_SIZE_BYTES, b"\0")
                pos = bisect.bisect_left(points, point)
                if pos < len(points) and points[pos] == point:
                    continue
                points.insert(pos, point)
                entries.insert(pos, RouteEntry(point, owner, backend.backend_id, backend.group_id))
                added += 1
        if backend.ids and added == 0:
            raise DuplicateRouteError(
                f"group {backend.group_id} backend {backend.backend_id}: all ids already routed")
        return added

    def _remove_where(self, pred) -> None:
        with self._lock:
            for group in list(self._entries):
                keep = [e for e in self._entries[group] if not pred(e)]
                if keep:
                    self._entries[group] = keep
                    self._points[group] = [e.point for e in keep]
                else:
                    del self._entries[group]
                    del self._points[group]

    def remove_owner(self, owner: Hashable) -> None:
        self._remove_where(lambda e: e.owner is owner)

    def remove_backend(self, owner: Hashable, backend_id: int) -> None:
        self._remove_where(lambda e: e.owner is owner and e.backend_id == backend_id)

    def lookup(self, group_id: int, key: bytes) -> Optional[RouteEntry]:
        """The owner of ``key`` in ``group_id``, or None when the group has no route."""
        key = bytes(key).ljust(ID_SIZE_BYTES, b"\0")
        with self._lock:
            points = self._points.get(group_id)
            if not points:
                return None
            pos = bisect.bisect_right(points, key) - 1
            return self._entries[group_id][pos]  # pos == -1 wraps to the largest point

    def search_range(self, group_id: int, key: bytes) -> Optional[Tuple[bytes, bytes]]:
        """(owner point, next point) with wrap-around, like ``dnet_search_range``."""
        key = bytes(key).ljust(ID_SIZE_BYTES, b"\0")
        with self._lock:
            points = self._points.get(group_id)
            if not points:
                return None
            pos = bisect.bisect_right(points, key) - 1
            return points[pos], points[(pos + 1) % len(points)]

    def groups(self) -> List[int]:
        with self._lock:
            return sorted(self._points)

    def entries(self) -> List[RouteEntry]:
        with self._lock:
            return [e for g in sorted(self._entries) for e in self._entries[g]]

    def owners(self) -> List[Hashable]:
        seen: List[Hashable] = []
        for e in self.entries():
            if not any(o is e.owner for o in seen):
                seen.append(e.owner)
        return seen
