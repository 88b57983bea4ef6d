"""vgtui.watch(model, optimizer): the dashboard on your own model, for any number of viewers.

    import vgtui
    watch = vgtui.watch(model, optimizer, name="exp3")  # prints: watching exp3 — attach with: vgtui attach exp3
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        watch.log(loss=loss, acc=acc)                   # tensors welcome: no .item(), no sync
        optimizer.step()                                # telemetry runs inside step() through optimizer hooks
    watch.close()                                       # also: with vgtui.watch(...) as watch:

This package runs inside the user's process and imports torch, never Textual. The package itself imports neither:
torch comes with vgtui.watch.api (the first Watch), so the hub process (vgtui.watch.hubproc) runs without it.
`vgtui.watch` is both this package and the function: the package's module object is callable (a submodule import
would otherwise replace a `vgtui.watch` function with the module on the parent package).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["Watch", "watch"]


def __getattr__(name: str) -> Any:
    if name in ("Watch", "watch"):
        return getattr(importlib.import_module("vgtui.watch.api"), name)
    raise AttributeError(f"module 'vgtui.watch' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """`vgtui.watch(model, optimizer, ...)` calls watch() even after `import vgtui.watch` put the module there."""

    def __call__(self, model: Any, optimizer: Any, **options: Any) -> Any:
        return importlib.import_module("vgtui.watch.api").watch(model, optimizer, **options)


sys.modules[__name__].__class__ = _CallableModule
