"""Batched inference without gradients, with a progress bar."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm


@torch.no_grad()
def run_batches(model: torch.nn.Module, features: Sequence[dict], collate: Callable, batch_size: int,
                desc: str) -> list[dict]:
    """Run ``model`` over ``features`` (a list of dicts or a ``datasets.Dataset``); one dict of outputs per batch."""
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    for start in tqdm(range(0, len(features), batch_size), desc=desc, disable=len(features) <= batch_size):
        batch = collate([features[i] for i in range(start, min(start + batch_size, len(features)))])
        batch = {k: v.to(device) for k, v in batch.items() if k not in ("labels", "start_positions", "end_positions")}
        result = model(**batch)
        outputs.append({"batch": {k: v.cpu() for k, v in batch.items()},
                        **{k: v.cpu() for k, v in result.items() if isinstance(v, torch.Tensor)}})
    return outputs
