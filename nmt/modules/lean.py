"""Memory-lean ReLU and dropout in a fairseq model whose base is frozen (``nmt.modules.lean_ops``).

What autograd keeps for a frozen feed-forward block is mostly what its
element-wise ops save: ``relu`` keeps its float32 output, although with a
frozen ``fc2`` only the sign pattern is needed, and the CPU's dropout keeps a
float32 noise tensor where a bool mask suffices.  ``use_lean_ops`` swaps the
lean versions into the model's layers through the attributes fairseq's layers
call (``activation_fn``, the ``FairseqDropout`` children); results and
gradients are those of the stock ops (tests/adapter_core/test_lean_ops.py).
At bench P2's shape (6+6 layers, d 512, FFN 2,048, 4,096 tokens) this saves
about 280 MB (ReLU) and 170 MB (dropout, CPU only) of a ~4 GB peak.  It is
opt-in (``--adapter-lean-ops``): on one CPU thread a bool-mask backward
(``masked_fill``) takes about 3.5x torch's ``threshold_backward``, and the
updates of that shape took about 10% longer.
"""

from __future__ import annotations

import torch
from fairseq.modules import FairseqDropout

from nmt.modules.lean_ops import LeanDropout, lean_relu

LEAN_OPS = ("relu", "dropout")


def use_lean_ops(model: torch.nn.Module, which: tuple[str, ...] = LEAN_OPS) -> dict[str, int]:
    """Swap in the lean ops; returns how many of each were swapped.

    "relu": the ``activation_fn`` of every layer whose ``fc2`` is frozen (a
    trained ``fc2`` needs the ReLU output for its weight gradient anyway);
    "dropout": every ``FairseqDropout`` with p > 0 (on CUDA the lean module
    calls the stock fused kernel, which already saves a compact mask).
    """
    unknown = set(which) - set(LEAN_OPS)
    if unknown:
        raise ValueError(f"unknown lean op(s) {sorted(unknown)}; known: {', '.join(LEAN_OPS)}")
    swapped = {"relu": 0, "dropout": 0}
    for module in model.modules():
        if ("relu" in which and getattr(module, "activation_fn", None) is torch.nn.functional.relu
                and hasattr(module, "fc2") and not module.fc2.weight.requires_grad):
            module.activation_fn = lean_relu
            swapped["relu"] += 1
        for name, child in list(module.named_children()):
            if "dropout" in which and isinstance(child, FairseqDropout) and child.p > 0:
                setattr(module, name, LeanDropout(child.p, child.apply_during_inference))
                swapped["dropout"] += 1
    return swapped
