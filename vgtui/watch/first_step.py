"""What the first optimizer step of a watched run settles, once the forward pass has shown the layers' order: the
shown layers, the meter that measures them, the layer info the viewers get and the notices about what is not
measured (a function over vgtui.watch.core.StepHooks' attributes)."""

from __future__ import annotations

from typing import Any

from vgtui.watch.layers import dominant_activation, module_path, select
from vgtui.watch.light import LightRows
from vgtui.watch.overlap import helper_for
from vgtui.watch.remedies import CAPABILITIES
from vgtui.watch.report import LayerInfo
from vgtui.watch.stats import Meter


def setup(hooks: Any) -> None:
    """At the first step: layers, meter, every-step rows, the norms helper, layer info, notices, probes."""
    found = hooks.order.finish()
    hooks.swap.finish()
    keep = hooks.keep
    if keep is not None and not callable(keep):
        wanted = {k if isinstance(k, str) else id(k) for k in keep}

        def keep_fn(name: str) -> bool:
            return name in wanted or any(id(la.module) in wanted for la in found if la.name == name)

    else:
        keep_fn = keep
    hooks.layers, note = select(found, keep_fn)
    if note:
        hooks._notices.append(("info", note))
    if hooks.dist is None:
        hooks.meter = Meter(hooks.params, hooks.layers, hooks.copy_limit)
    else:
        hooks.meter = hooks.dist.meter(hooks, hooks.params, hooks.layers, hooks.copy_limit)
    hooks.rows = LightRows(hooks.meter.plan)
    if hooks.dist is not None and not hooks.dist.measures:
        hooks._disabled.add("heavy")  # DDP, ranks other than 0: nothing they measure is shown
    hooks.helper = helper_for(hooks.optimizer, hooks.meter.weights, hooks.meter.plan, hooks.dist)
    if not hooks.meter.copy_on:
        mb = hooks.meter.copy_bytes / 2**20
        hooks._notices.append(
            (
                "info",
                f"update size off: the shown weights take {mb:.0f} MiB (limit "
                f"{hooks.copy_limit / 2**20:.0f} MiB, copy_limit_mb= raises it)",
            )
        )
    hooks.probes.relayer(hooks.layers)
    block_names = tuple(module_path(hooks.model, b) for b in hooks.blocks)
    hooks.info = LayerInfo(
        tuple(la.name for la in hooks.layers),
        hooks.meter.numel,
        dominant_activation(hooks.acts),
        type(hooks.optimizer).__name__,
        block_names,
        tuple(hooks.probes.block_layer),
        CAPABILITIES + hooks.swap.capabilities,
    )
    if not hooks.acts:
        hooks._notices.append(
            ("info", "no activation modules found (F.* calls?): slope, saturation and dead units are not measured")
        )
    if hooks.heavy_due(2):
        hooks.probes.arm()
