"""A deep MLP (nn.Sequential, in-place ReLU) on two spirals, watched with vgtui.

    python examples/deep_mlp.py                  # 12 in-place ReLU layers with He init: it trains
    python examples/deep_mlp.py --act sigmoid    # 20 sigmoid layers: the gradient vanishes before layer 1
    python examples/deep_mlp.py --act sigmoid --allow-swap   # ... and a viewer's `a` swaps them to ReLU, live

and in another terminal:  vgtui attach deep-mlp
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F
from torch import nn

import vgtui


def spirals(n: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved spirals in the plane: n points, labels 0 and 1."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=gen) * 3 * math.pi + 0.5
    label = torch.randint(0, 2, (n,), generator=gen)
    sign = 1 - 2 * label.float()
    x = torch.stack([t * torch.cos(t) * sign, t * torch.sin(t) * sign], dim=1) / (3 * math.pi)
    return x + noise * torch.randn(n, 2, generator=gen), label


def deep_mlp(depth: int, width: int, act: str) -> nn.Sequential:
    def activation() -> nn.Module:
        return nn.ReLU(inplace=True) if act == "relu" else nn.Sigmoid()

    layers: list[nn.Module] = [nn.Linear(2, width), activation()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), activation()]
    layers.append(nn.Linear(width, 2))
    model = nn.Sequential(*layers)
    if act == "relu":  # He init: the weights keep the signal's scale through ReLU layers
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--act", choices=("relu", "sigmoid"), default="relu")
    parser.add_argument("--depth", type=int, default=None, help="hidden layers (default 12 for relu, 20 for sigmoid)")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--name", default="deep-mlp")
    parser.add_argument("--record", default=None, help="also write the run log here (vgtui replay / vgtui plot)")
    parser.add_argument("--allow-swap", action="store_true", help="let viewers swap the hidden activations (a)")
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y = spirals(4096, 0.05, seed=1)
    model = deep_mlp(args.depth or (12 if args.act == "relu" else 20), args.width, args.act)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    with vgtui.watch(model, optimizer, name=args.name, record=args.record, allow_swap=args.allow_swap) as watch:
        for _ in range(args.steps):
            idx = torch.randint(0, len(x), (128,))
            out = model(x[idx])
            loss = F.cross_entropy(out, y[idx])
            acc = (out.argmax(dim=1) == y[idx]).float().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            watch.log(loss=loss, acc=acc)
            optimizer.step()
    print(f"done: {args.steps} steps, last loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
