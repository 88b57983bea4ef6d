"""What vgtui remembers across runs (the dashboard's theme), in $XDG_CONFIG_HOME/vgtui/settings.json. No torch.

A settings file that cannot be read or written is passed over: a remembered theme is a convenience, never a
reason for a command to fail.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def settings_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vgtui" / "settings.json"


def load() -> dict[str, Any]:
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember(**values: Any) -> None:
    """Merge `values` into the settings file (best effort)."""
    data = {**load(), **values}
    path = settings_path()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(path)


def chosen_theme(requested: str | None) -> str | None:
    """The theme to use: the one asked for (checked, then remembered), else the remembered one, else None."""
    from vgtui.tui.app import theme_name

    if requested:
        name = theme_name(requested)  # ValueError naming the choices
        remember(theme=requested)
        return name
    saved = load().get("theme")
    if isinstance(saved, str):
        with contextlib.suppress(ValueError):
            return theme_name(saved)
    return None
