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

PLUGIN = "sessionstream.testing.plugin"

if importlib.util.find_spec("sessionstream.testing") is None:
    # A package built before sessionstream.testing existed: take it from the source tree.
    import sessionstream

    sessionstream.__path__.append(str(ROOT / "python" / "sessionstream"))

# Installed with its pytest11 entry point (or named with -p), the plugin was imported and
# registered before this file, and registering it twice is an error.
pytest_plugins = [] if PLUGIN in sys.modules else [PLUGIN]
