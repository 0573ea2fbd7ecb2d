"""The package version: the one place it is written.

The build reads it from here (scikit-build-core's regex provider in pyproject.toml), so
the wheel's metadata and ``sessionstream.__version__`` cannot disagree.
"""

__version__ = "0.1.0"
