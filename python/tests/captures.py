"""Parser for the hexdump wire captures in ``tests/data/wire-captures``.

Each capture file lists frames as ``message #N ... (client -> server) total X bytes``
followed by hexdump lines (header, then payload). This module rebuilds the exact bytes of
every frame and checks each against its stated total.
"""

import pathlib
import re
from dataclasses import dataclass
from typing import List

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CAPTURE_DIR = REPO_ROOT / "tests" / "data" / "wire-captures"

_MESSAGE = re.compile(r"^message #(\d+) .*\((client|server) -> (?:client|server)\)\s+"
                      r"total (\d+) bytes")
_HEX = re.compile(r"^    ([0-9a-f]{4})  ((?:[0-9a-f]{2} ){1,16})")


@dataclass
class Frame:
    number: int
    sender: str  # "client" or "server"
    data: bytes


def capture_path(name: str) -> pathlib.Path:
    path = CAPTURE_DIR / name
    if not path.is_file():
        pytest.fail(f"wire capture {name} not found at {path.resolve()} "
                    f"(the captures are part of the repository, under tests/data/wire-captures)")
    return path


def load(name: str) -> List[Frame]:
    frames: List[Frame] = []
    current = None
    expected = 0
    for line in capture_path(name).read_text().splitlines():
        m = _MESSAGE.match(line)
        if m:
            if current is not None:
                frames.append(_finish(current, expected))
            current = Frame(int(m.group(1)), m.group(2), b"")
            expected = int(m.group(3))
            continue
        h = _HEX.match(line)
        if h and current is not None:
            current.data += bytes.fromhex(h.group(2))
    if current is not None:
        frames.append(_finish(current, expected))
    if not frames:
        pytest.fail(f"wire capture {name} holds no frames")
    return frames


def _finish(frame: Frame, expected: int) -> Frame:
    if len(frame.data) != expected:
        pytest.fail(f"capture frame #{frame.number}: parsed {len(frame.data)} bytes, "
                    f"header line says {expected}")
    return frame


ALL_CAPTURES = ["ioclient-write.txt", "ioclient-read.txt", "ioclient-write-rawid.txt",
                "ioclient-read-missing.txt", "python-write-read.txt"]
