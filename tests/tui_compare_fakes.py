"""A deterministic fake comparison for the dashboard tests: two FakeSessions, A and B, behind one SessionLike.

It understands Fork (B := a copy of A now, with the toggles), Target (where toggles go) and EndCompare (keep A or
B), and publishes A's snapshot with B's in `compare`, as vgtui.engine.compare.CompareSession does.
"""

from __future__ import annotations

from dataclasses import replace

from vgtui.contract import Command, Comparison, EndCompare, Fork, Reset, Snapshot, Target, Toggle, compare_legend

try:
    from tui_fakes import FakeSession, fake_config
except ImportError:  # tests/ imported as a package
    from tests.tui_fakes import FakeSession, fake_config


class FakeCompareSession:
    def __init__(self, config=None) -> None:
        self.a = FakeSession(config or fake_config())
        self.b: FakeSession | None = None
        self.config = self.a.config
        self.fork_step = 0
        self.target = "A"
        self.commands: list[Command] = []
        self.stop_calls = 0
        self._key: tuple | None = None
        self._snap: Snapshot | None = None

    def start(self) -> FakeCompareSession:
        return self

    def stop(self, timeout: float = 1.0) -> None:
        self.stop_calls += 1

    @property
    def history(self):
        return self.a.history

    @property
    def history_b(self):
        return self.b.history if self.b is not None else None

    def advance(self, n: int = 1) -> None:
        for _ in range(n):
            self.a.advance(1)
            if self.b is not None:
                self.b.advance(1)

    def fork(self, toggles: tuple[Toggle, ...] = ()) -> None:
        a, b = self.a, FakeSession(self.a.config)
        b.model, b.step, b.loss, b.status, b.hist_layer = a.model, a.step, a.loss, a.status, a.hist_layer
        for t in toggles:
            b._toggle(t)
        self.b, self.fork_step, self.target = b, self.a.step, "B"

    def send(self, command: Command) -> None:
        self.commands.append(command)
        if isinstance(command, Fork):
            self.fork(command.toggles or ())
        elif isinstance(command, Target):
            self.target = command.run
        elif isinstance(command, EndCompare):
            if command.keep == "B" and self.b is not None:
                self.a = self.b
            self.b, self.target = None, "A"
        elif isinstance(command, (Toggle, Reset)) and self.b is not None and self.target == "B":
            self.b.send(command)
        else:
            self.a.send(command)
            if self.b is not None and not isinstance(command, (Toggle, Reset)):
                self.b.send(command)

    def latest(self) -> Snapshot | None:
        a = self.a.latest()
        if a is None or self.b is None:
            return a
        b = self.b.latest()
        key = (id(a), id(b), self.target)
        if key != self._key:
            label = compare_legend(a.model, b.model, self.fork_step)
            self._snap = replace(a, compare=Comparison(label, self.fork_step, self.target, b))
            self._key = key
        return self._snap
