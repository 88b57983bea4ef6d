"""A residual MLP whose forward calls F.* (no activation modules), trained with AdamW and a cosine schedule,
watched with vgtui; its residual blocks are named so the dashboard shows the gradient reaching each one.

    python examples/custom_forward.py
    python examples/custom_forward.py --no-skip    # the same blocks without the residual path: it vanishes

and in another terminal:  vgtui attach custom-forward
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

import vgtui


def checkerboard(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points in [-1, 1]^2 labelled by a 4x4 checkerboard."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=gen) * 2 - 1
    cells = ((x + 1) * 2).floor().long().clamp(max=3)
    return x, (cells[:, 0] + cells[:, 1]) % 2


class Block(nn.Module):
    def __init__(self, width: int, skip: bool) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, 2 * width)
        self.fc2 = nn.Linear(2 * width, width)
        self.skip = skip

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.fc2(F.gelu(self.fc1(h)))
        return h + out if self.skip else torch.tanh(out)


class ResidualMLP(nn.Module):
    def __init__(self, width: int, depth: int, skip: bool) -> None:
        super().__init__()
        self.stem = nn.Linear(2, width)
        self.blocks = nn.ModuleList(Block(width, skip) for _ in range(depth))
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem(x))
        for block in self.blocks:
            h = block(h)
        return self.head(F.layer_norm(h, h.shape[-1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--no-skip", dest="skip", action="store_false")
    parser.add_argument("--name", default="custom-forward")
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y = checkerboard(8192, seed=1)
    model = ResidualMLP(args.width, args.depth, args.skip)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps)
    watch = vgtui.watch(model, optimizer, name=args.name, blocks=model.blocks)
    try:
        for _ in range(args.steps):
            idx = torch.randint(0, len(x), (256,))
            out = model(x[idx])
            loss = F.cross_entropy(out, y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            watch.log(loss=loss, acc=(out.argmax(dim=1) == y[idx]).float().mean())
            optimizer.step()
            schedule.step()
    finally:
        watch.close()
    print(f"done: {args.steps} steps, last loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
