"""vgtui: see the vanishing gradient problem, and fix it live, in your terminal.

`vgtui.watch(model, optimizer)` watches your own model (imports torch, never Textual); `vgtui.connect(TARGET)`
returns the torch-free session a dashboard or a notebook reads. Both load lazily: `import vgtui` imports neither
torch nor Textual.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("vgtui")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__", "connect", "watch"]


def __getattr__(name: str) -> Any:
    if name == "watch":
        import importlib

        return importlib.import_module("vgtui.watch")  # a callable module: vgtui.watch(model, optimizer, ...)
    if name == "connect":
        from vgtui.attach import connect

        return connect
    raise AttributeError(f"module 'vgtui' has no attribute {name!r}")
