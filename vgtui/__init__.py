"""vgtui: see the vanishing gradient problem, and fix it live, in your terminal."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vgtui")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"
