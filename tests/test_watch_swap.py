"""Swapping hidden activation modules from a viewer (vgtui.watch(..., allow_swap=True)): which modules, the result
equal to a hand-built model, the undo, and the refusals with their reasons."""

from __future__ import annotations

import copy
import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from watch_helpers import one_torch_thread_fixture, wait_for, watch_dir_fixture  # noqa: F401 - fixtures

import vgtui
from vgtui.attach import connect
from vgtui.contract import Toggle
from vgtui.watch import swap as swap_module
from vgtui.watch.swap import Swapper

pytestmark = pytest.mark.usefixtures("one_torch_thread", "watch_dir")


def deep_mlp(depth: int = 6, width: int = 16, out_act: bool = False) -> nn.Sequential:
    """examples/deep_mlp.py's model with sigmoid (optionally with an output sigmoid)."""
    layers: list[nn.Module] = [nn.Linear(2, width), nn.Sigmoid()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.Sigmoid()]
    layers.append(nn.Linear(width, 2))
    if out_act:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


class Gated(nn.Module):
    """Hidden Sigmoid/Tanh in a Sequential, a Sequential's last sigmoid, a squeeze-excitation style gate, an LSTM
    (its gates are no modules) and an output sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(4, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.Tanh(), nn.Dropout(0.0), nn.Linear(16, 16),
            nn.Sigmoid(),
        )  # fmt: skip
        self.gate = nn.Sequential(nn.Linear(16, 16), nn.Sigmoid())
        self.lstm = nn.LSTM(16, 16)
        self.head = nn.Linear(16, 2)
        self.out = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        h = h * self.gate(h)
        h, _ = self.lstm(h.unsqueeze(0))
        return self.out(self.head(h[0]))


def _swapper(model: nn.Module, allow=True, x: torch.Tensor | None = None) -> Swapper:
    """A Swapper that has seen one forward pass (as in the first training step)."""
    swapper = Swapper(model, allow)
    model(x if x is not None else torch.randn(8, 4))
    swapper.finish()
    return swapper


@pytest.mark.parametrize("seed", range(3))
def test_hidden_modules_swap_to_exactly_a_hand_built_model_and_gates_and_the_output_stay(seed):
    torch.manual_seed(seed)
    model = Gated()
    before = copy.deepcopy(model)
    kept = list(model.modules())
    last, gate, out = model.body[6], model.gate[1], model.out
    swapper = _swapper(model)
    applied, text = swapper.apply("relu")
    assert applied and "body.1" in text and "body.3" in text
    expected = copy.deepcopy(before)
    expected.body[1], expected.body[3] = nn.ReLU(), nn.ReLU()
    x = torch.randn(32, 4)
    torch.testing.assert_close(model(x), expected(x), rtol=0, atol=0)
    assert model.body[6] is last  # a Sequential's last child: the Sequential's output, maybe a gate
    assert model.gate[1] is gate  # the squeeze-excitation style gate
    assert model.out is out  # the output activation
    assert "out (the output activation" in text and "gate.1" in text
    assert model.state_dict().keys() == before.state_dict().keys()
    applied, text = swapper.apply("leaky_relu")
    expected.body[1], expected.body[3] = nn.LeakyReLU(0.01), nn.LeakyReLU(0.01)
    torch.testing.assert_close(model(x), expected(x), rtol=0, atol=0)
    applied, text = swapper.apply("sigmoid")  # undo: the original module objects, where they were
    assert applied and "restored" in text
    assert list(model.modules()) == kept and all(a is b for a, b in zip(model.modules(), kept, strict=True))
    torch.testing.assert_close(model(x), before(x), rtol=0, atol=0)


def test_the_example_model_swaps_every_hidden_sigmoid_and_never_touches_other_modules():
    torch.manual_seed(0)
    model = deep_mlp(out_act=True)
    model[0] = nn.Sequential(nn.Linear(2, 16), nn.ReLU(inplace=True), nn.Linear(16, 16))  # the user's in-place ReLU
    before = copy.deepcopy(model)
    swapper = _swapper(model, x=torch.randn(8, 2))
    assert swapper.apply("relu")[0]
    hidden = [i for i in range(1, 12, 2)]
    assert all(type(model[i]) is nn.ReLU for i in hidden) and type(model[-1]) is nn.Sigmoid
    assert model[0][1].inplace is True  # the user's module as it was
    expected = copy.deepcopy(before)
    for i in hidden:
        expected[i] = nn.ReLU()
    x = torch.randn(64, 2)
    torch.testing.assert_close(model(x), expected(x), rtol=0, atol=0)


def test_modules_the_user_lists_are_the_only_ones_swapped_and_never_the_output():
    model = Gated()
    gate = model.gate[1]
    swapper = _swapper(model, allow=["gate.1", model.out])
    applied, text = swapper.apply("relu")
    assert applied and type(model.gate[1]) is nn.ReLU and type(model.body[1]) is nn.Sigmoid
    assert type(model.out) is nn.Sigmoid and "out (the output activation" in text
    swapper.undo()
    assert model.gate[1] is gate
    with pytest.raises(ValueError, match="a ReLU: allowed: nn.Sigmoid or nn.Tanh"):
        Swapper(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), allow=["1"])


def test_refusals_name_their_reason(monkeypatch):
    x = torch.randn(8, 2)
    assert "allow_swap=True" in Swapper(deep_mlp(), False).apply("relu")[1]

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(2, 8), nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(torch.sigmoid(self.a(x)))

    applied, text = _swapper(Functional(), x=x).apply("relu")
    assert not applied and "F.*" in text
    applied, text = _swapper(deep_mlp(), x=x).apply("tanh")
    assert not applied and "allowed: relu or leaky_relu (from sigmoid), or sigmoid to undo" in text
    only_output = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid())
    applied, text = _swapper(only_output, x=x).apply("relu")
    assert not applied and "never the output activation" in text and type(only_output[1]) is nn.Sigmoid
    applied, text = _swapper(deep_mlp(), x=x).apply("sigmoid")
    assert not applied and "no swap to undo" in text
    monkeypatch.setattr(swap_module, "several_ranks", lambda: True)
    applied, text = _swapper(deep_mlp(), x=x).apply("relu")
    assert not applied and "torch.distributed ranks" in text


def test_a_compiled_model_is_refused():
    x = torch.randn(8, 2)
    model = deep_mlp()
    assert "torch.compile" in _swapper(torch.compile(model, backend="eager"), x=x).apply("relu")[1]
    for _ in range(2):  # compiled after vgtui.watch (the second time dynamo reuses the graph: no hook runs)
        later = deep_mlp()
        swapper = Swapper(later, True)
        torch.compile(later, backend="eager")(x)
        swapper.finish()
        applied, text = swapper.apply("relu")
        assert not applied and "torch.compile" in text and type(later[1]) is nn.Sigmoid


def test_a_module_with_someone_elses_hook_is_left_alone():
    model = deep_mlp(depth=3)
    model[1].register_forward_hook(lambda *a: None)
    applied, text = _swapper(model, x=torch.randn(4, 2)).apply("relu")
    assert applied and type(model[1]) is nn.Sigmoid and type(model[3]) is nn.ReLU
    assert "[1] (carries a hook vgtui did not register)" in text


class Loop:
    """A user's loop in a thread, watched with allow_swap."""

    def __init__(self, model: nn.Module, allow_swap=True) -> None:
        torch.manual_seed(0)
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1)
        self.watch = vgtui.watch(model, self.opt, name="swap", publish_every=0.02, heavy_every=5, quiet=True,
                                 allow_swap=allow_swap)  # fmt: skip
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        x = torch.randn(64, 2)
        y = (x[:, 0] > 0).long()
        while not self.stop.is_set():
            loss = F.cross_entropy(self.model(x), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.watch.log(loss=loss)
            self.opt.step()

    def __enter__(self) -> Loop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.watch.close()
        self.thread.join(10)


def _texts(session) -> str:
    snap = session.latest()
    return " | ".join(n.text for n in snap.notices) if snap is not None else ""


def test_a_viewer_swaps_and_undoes_between_steps_and_sees_the_model_change(capsys):
    model = deep_mlp(depth=4)
    originals = [model[i] for i in (1, 3, 5, 7)]
    with Loop(model) as loop:
        s = connect("swap")
        wait_for(lambda: loop.watch.step > 5 and s.latest() is not None, 30, "training")
        assert s.latest().model.activation == "sigmoid"
        assert {"activation", "activation_from=sigmoid"} <= set(s.latest().model.capabilities)
        s.send(Toggle("activation", "relu"))
        wait_for(lambda: s.latest().model.activation == "relu", 30, "the swap")
        at = next(e.step for e in s.latest().events if e.name == "activation")
        assert all(type(model[i]) is nn.ReLU for i in (1, 3, 5, 7)) and "swapped 4 hidden" in _texts(s)
        wait_for(lambda: s.latest().stats_step > at + 5, 30, "a heavy step after the swap")
        dead = s.latest().dead[:4]  # ReLU statistics now: dead units measured, no saturation
        assert all(0 <= d <= 1 for d in dead)
        s.send(Toggle("activation", "sigmoid"))
        wait_for(lambda: s.latest().model.activation == "sigmoid", 30, "the undo")
        assert [model[i] for i in (1, 3, 5, 7)] == originals and all(
            model[i] is m for i, m in zip((1, 3, 5, 7), originals, strict=True)
        )
        assert [e.value for e in s.latest().events if e.name == "activation"] == ["relu", "sigmoid"]
        s.stop()


def test_without_allow_swap_the_viewer_is_told_how_to_allow_it():
    with Loop(deep_mlp(depth=2), allow_swap=False) as loop:
        s = connect("swap")
        wait_for(lambda: loop.watch.step > 2, 30, "training")
        s.send(Toggle("activation", "relu"))
        wait_for(lambda: "allow_swap=True" in _texts(s), 30, "the refusal")
        assert type(loop.model[1]) is nn.Sigmoid
        assert "activation" not in s.latest().model.capabilities
        s.stop()


def test_the_dashboards_activation_key_cycles_a_watched_model_through_the_swap_and_back():
    from vgtui.contract import ModelState
    from vgtui.tui.keys import toggle_for

    caps = ("pause", "clip", "activation", "activation_from=tanh")
    user = ModelState("user", "tanh", "yours", False, False, None, 0.1, 3, "", capabilities=caps)
    values = []
    for _ in range(3):
        values.append(toggle_for("activation", user).value)
        user = ModelState("user", values[-1], "yours", False, False, None, 0.1, 3, "", capabilities=caps)
    assert values == ["relu", "leaky_relu", "tanh"]
    no_swap = ModelState("user", "sigmoid", "yours", False, False, None, 0.1, 3, "")
    assert toggle_for("activation", no_swap).value == "relu"  # sent anyway: the answer says how to allow it


def test_the_diagnosis_offers_the_swap_live_only_where_it_can_be_done():
    from vgtui.contract import Verdict
    from vgtui.tui.series import remedy_key
    from vgtui.watch.remedies import IN_CODE, for_user

    verdict = (Verdict("vanishing", "alarm", "The gradient vanishes.", ()),)
    live = for_user(verdict, swap=True)[0].remedies[0]
    assert not live.startswith(IN_CODE) and remedy_key(live) == "a"
    assert for_user(verdict)[0].remedies[0].startswith(IN_CODE)
