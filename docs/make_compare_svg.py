"""Render docs/compare.svg (python docs/make_compare_svg.py docs/compare.svg; rsvg-convert -w 1600 for the PNG):
deep-sigmoid with run B (leaky_relu + he) forked at step 300, at step 1500, 160x50, the real engine in a thread."""

import asyncio
import sys

from vgtui.engine.compare import CompareSession
from vgtui.engine.toggles import parse_compare
from vgtui.presets import resolve
from vgtui.tui.app import VgtuiApp

OUT = sys.argv[1]


async def main() -> None:
    cfg = resolve("deep-sigmoid")
    session = CompareSession(
        cfg, "cpu", compare=parse_compare("activation=leaky_relu,init=he"), fork_at=300, max_steps=1500
    )
    app = VgtuiApp(cfg, lambda c: session, refresh_hz=2)
    async with app.run_test(size=(160, 50)) as pilot:
        while not session.done.is_set():
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)
        app.poll()
        await pilot.pause()
        app.redraw()
        await pilot.pause()
        await asyncio.sleep(0.5)
        app.save_screenshot(OUT)
        print(app.snap.step, app.snap.loss, app.snap.compare.b.loss, app.snap.compare.label)


asyncio.run(main())
