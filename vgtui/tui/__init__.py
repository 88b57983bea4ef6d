"""The Textual dashboard (no torch here: it sees only the plain data of vgtui.contract)."""

from vgtui.tui.app import DEFAULT_REFRESH_HZ, VgtuiApp, run_dashboard

__all__ = ["DEFAULT_REFRESH_HZ", "VgtuiApp", "run_dashboard"]
