"""`vgtui serve`: the dashboard in a browser, guarded.

- `guard`: who may come in (Host, Origin, token), how many sessions fit, terminal size limits. Pure functions.
- `server`: the textual-serve Server subclass that applies them (aiohttp).
- `session`: one browser tab's `vgtui launch` process group, ended whole when the tab leaves.
- `tether`: the entry point of that process; it ends itself (and its trainer) when the server dies.
- `options`, `attach_target`: `--attach TARGET` (each tab runs `vgtui attach TARGET`, read-only unless --control),
  checked before serving.
"""
