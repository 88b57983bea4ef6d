"""The theme is chosen once and remembered; vgtui serve's page takes a projector font size and focuses the terminal
so that keys work without a click."""

from __future__ import annotations

import urllib.request

import pytest
from serve_helpers import serving

from vgtui.cli import main
from vgtui.settings import chosen_theme, load


@pytest.fixture(autouse=True)
def own_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))


def test_a_theme_is_checked_and_remembered_for_the_next_runs():
    assert chosen_theme(None) is None  # nothing remembered yet: the app's default
    assert chosen_theme("light") == "textual-light"
    assert load()["theme"] == "light"
    assert chosen_theme(None) == "textual-light"
    with pytest.raises(ValueError, match="choose one of: dark, light"):
        chosen_theme("purple")
    assert chosen_theme(None) == "textual-light"  # a refused theme is not remembered


def test_a_bad_theme_or_font_size_is_one_line(capsys):
    assert main(["launch", "deep-sigmoid", "--theme", "purple"]) == 2
    assert "unknown theme 'purple'" in capsys.readouterr().err
    assert main(["serve", "deep-sigmoid", "--font-size", "200"]) == 2
    assert "--font-size 200: allowed: an integer from 6 to 64" in capsys.readouterr().err


def test_the_page_has_the_font_size_and_focuses_the_terminal():
    with serving("--font-size", "26") as served:
        page = urllib.request.urlopen(f"{served.base}/", timeout=10).read().decode()
        assert 'data-font-size="26"' in page
        assert "#terminal textarea" in page and "focus(" in page
        small = urllib.request.urlopen(f"{served.base}/?fontsize=12", timeout=10).read().decode()
        assert 'data-font-size="12"' in small
