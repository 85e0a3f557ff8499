"""AdapterDrop in xling follows adapter_core's policy and the Trainer's step, so a resumed robust run drops, step for
step, what the uninterrupted one dropped (the end-to-end resume with drop on: test_reliability_training.py)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from transformers import XLMRobertaConfig, XLMRobertaModel

from adapter_core import AdapterDropConfig
from xling.attach import TransformersHost
from xling.drop import AdapterDrop, AdapterDropSteps

IDS = torch.tensor([[0, 5, 17, 33, 8, 21, 2], [0, 9, 44, 12, 2, 1, 1]])


def tiny_host() -> TransformersHost:
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                              intermediate_size=64, max_position_embeddings=40, pad_token_id=1)
    host = TransformersHost(XLMRobertaModel(config).train())
    host.add_adapter("t", role="task")
    host.set_active("t")
    return host


def test_the_n_of_step_k_is_the_same_in_a_fresh_object_as_in_a_long_running_one():
    config = AdapterDropConfig(mode="robust", max_dropped=3, seed=4)
    long_running = AdapterDrop(tiny_host(), config)
    drawn = []
    for _ in range(25):  # used by hand, every training forward is the next step
        long_running.host.model(IDS)
        drawn.append(long_running.current)
    assert drawn == [config.training_dropped(step) for step in range(25)] and len(set(drawn)) == 4
    fresh = AdapterDrop(tiny_host(), AdapterDropConfig(mode="robust", max_dropped=3, seed=4))
    callback = AdapterDropSteps(fresh)
    for step in (17, 3, 17):
        callback.on_step_begin(None, SimpleNamespace(global_step=step), None)  # what the Trainer calls
        for _ in range(3):  # every micro-batch of one optimizer step drops the same n
            fresh.host.model(IDS)
            assert fresh.current == drawn[step]
            assert fresh.host.skipped_layers == frozenset(range(drawn[step]))
