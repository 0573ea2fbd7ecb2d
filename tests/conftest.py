"""Shared pytest set-up: make the in-tree package and the examples importable."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if importlib.util.find_spec("sessionstream") is None:  # not installed: use the source tree
    sys.path.insert(0, str(ROOT / "python"))
