"""Lean replacements for ReLU and dropout that save a boolean mask for backward instead of a float tensor.

Adapter training freezes the base, and what autograd keeps for a frozen
feed-forward block is mostly what its element-wise ops save:

- ``torch.relu`` saves its float32 output (4 bytes an element) so that its
  backward can tell where the input was positive.  When the following
  projection (``fc2``) is frozen, nothing else needs that output, and one byte
  an element (the mask) gives the same gradient.  ``lean_relu`` saves only
  the mask.  Where ``fc2`` is trained, its weight gradient needs the ReLU
  output anyway, so the lean op saves nothing there (and costs the mask):
  use it only in front of a frozen projection.
- On the CPU, ``torch.nn.functional.dropout`` builds a float32 noise tensor
  (mask / (1 - p)) and saves it (CUDA's fused kernel already saves a bool
  mask).  ``LeanDropout`` draws a bool mask, saves that, and rebuilds the
  float multiplier in backward; output and gradient are ``x * noise`` and
  ``grad * noise`` with the same float32 noise values as the stock op.

Neither recomputes anything from the inputs: the mask is all the backward
needs.  At P2's shape (4,096 tokens, FFN 2,048) each frozen FFN's ReLU output
is 33.6 MB and its mask 8.4 MB; each d-512 dropout mask is 8.4 MB as float32
and 2.1 MB as bool.  See ``bench/memory_profile.py`` for the measured savings.

Only torch is needed; nothing here knows about fairseq or transformers.
"""

from __future__ import annotations

import torch
from torch import nn


class _ReluSavingMask(torch.autograd.Function):
    """relu(x), saving ``relu(x) <= 0`` (bool) for backward: one extra pass forward, the stock cost backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(x)
        # The stock backward is threshold_backward(grad, out, 0): zero where out <= 0, grad elsewhere (NaN passes).
        ctx.save_for_backward(out <= 0)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (zeroed,) = ctx.saved_tensors
        return grad.masked_fill(zeroed, 0)


def lean_relu(x: torch.Tensor) -> torch.Tensor:
    """``torch.relu`` with a bool mask saved for backward; a drop-in ``activation_fn``."""
    if not torch.is_grad_enabled() or not x.requires_grad:
        return torch.relu(x)
    return _ReluSavingMask.apply(x)


class _DropoutSavingMask(torch.autograd.Function):
    """x * noise with noise = mask / (1 - p), saving only the bool mask."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
        ctx.save_for_backward(mask)
        ctx.p = p
        return x * mask.to(x.dtype).div_(1 - p)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (mask,) = ctx.saved_tensors
        return grad * mask.to(grad.dtype).div_(1 - ctx.p), None, None


def lean_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``torch.nn.functional.dropout`` (not in place) saving a bool mask for backward."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    if x.device.type != "cpu":  # CUDA's fused dropout already saves a compact mask, and is faster
        return torch.nn.functional.dropout(x, p, True)
    mask = torch.empty_like(x, dtype=torch.bool).bernoulli_(1 - p)
    if not torch.is_grad_enabled() or not x.requires_grad:
        return x * mask.to(x.dtype).div_(1 - p)
    return _DropoutSavingMask.apply(x, mask, p)


class LeanDropout(nn.Module):
    """A dropout module with fairseq ``FairseqDropout``'s interface (``forward(x, inplace=False)``) saving a bool mask.

    ``apply_during_inference`` keeps dropout on in eval mode, as fairseq's
    option of that name; ``inplace`` is accepted and ignored (the output is
    always a new tensor).
    """

    def __init__(self, p: float, apply_during_inference: bool = False):
        super().__init__()
        self.p = p
        self.apply_during_inference = apply_during_inference

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        return lean_dropout(x, self.p, self.training or self.apply_during_inference)

    def extra_repr(self) -> str:
        return f"p={self.p}"
