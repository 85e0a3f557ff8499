"""Adapters move between the fairseq plugin (nmt) and the transformers host (xling.seq2seq), both ways.

A tiny M2M-100 in fairseq's published format (tests/nmt/test_checkpoint_formats.py builds it: pre-norm,
shared embeddings, sinusoidal positions, scaled embeddings, ``__xx__`` language tokens) gets pair adapters
trained by ``fairseq-train`` with the plugin and exported by ``nmt export``.  The same base, converted to
transformers' ``M2M100ForConditionalGeneration`` (transformers 5 ships no converter for fairseq's M2M-100
checkpoints, so ``to_transformers`` below does what its former
``convert_m2m100_original_checkpoint_to_pytorch.py`` did: drop fairseq's bookkeeping tensors, put the
shared embedding under ``shared.weight``, tie the output projection), loads the exported directories and
must give the same logits (<= 1e-5) and the same beam-4 translations; an adapter saved by the transformers
host then loads into the plugin with the same result.  The test imports both frameworks; the library
modules do not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nmt"))
pytest.importorskip("fairseq")

from test_checkpoint_formats import CASES, our_argv, save_stock_checkpoint, tokens, train_args, write_release  # noqa: E402
from nmt_corpus import render  # noqa: E402
from nmt_helpers import run_train  # noqa: E402

from seq2seq_models import randomise_adapters  # noqa: E402
from xling.seq2seq import Seq2SeqAdapterHost  # noqa: E402

CASE = CASES["m2m100_418m"]
SRC, TGT = CASE.langs[0], CASE.langs[1]
#: fairseq bookkeeping tensors with no counterpart in transformers.
FAIRSEQ_ONLY = ("encoder.version", "decoder.version", "encoder.embed_positions._float_tensor",
                "decoder.embed_positions._float_tensor", "decoder.output_projection.weight")


def to_transformers(state: dict, args):
    """transformers' M2M100ForConditionalGeneration holding the fairseq checkpoint's base weights."""
    from fairseq.models.transformer import TransformerConfig
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    cfg = TransformerConfig.from_namespace(args)
    weights = {k: v for k, v in state.items() if k not in FAIRSEQ_ONLY and ".adapter_bank." not in k}
    vocab, d = weights["encoder.embed_tokens.weight"].shape
    config = M2M100Config(
        vocab_size=vocab, d_model=d, encoder_layers=cfg.encoder.layers, decoder_layers=cfg.decoder.layers,
        encoder_attention_heads=cfg.encoder.attention_heads, decoder_attention_heads=cfg.decoder.attention_heads,
        encoder_ffn_dim=cfg.encoder.ffn_embed_dim, decoder_ffn_dim=cfg.decoder.ffn_embed_dim,
        max_position_embeddings=cfg.max_source_positions, activation_function=str(cfg.activation_fn),
        scale_embedding=not cfg.no_scale_embedding, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        encoder_layerdrop=0.0, decoder_layerdrop=0.0, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        decoder_start_token_id=2)
    model = M2M100ForConditionalGeneration(config)
    weights["shared.weight"] = weights["decoder.embed_tokens.weight"]
    missing, unexpected = model.model.load_state_dict(weights, strict=False)
    assert not unexpected and not missing, (missing, unexpected)
    model.tie_weights()
    assert torch.equal(model.lm_head.weight, state["decoder.output_projection.weight"])
    return model.eval()


@pytest.fixture(scope="module", params=["bapna_firat", "houlsby"])
def trained(request, tmp_path_factory):
    """The published-format base, pair adapters trained on it by the plugin (each layer's output, or Houlsby's
    two sites per layer), and their exported directories."""
    from fairseq import checkpoint_utils, tasks

    from nmt.cli import export_adapters_main

    root = tmp_path_factory.mktemp("interchange")
    files = write_release(CASE, root)
    base = root / "published.pt"
    save_stock_checkpoint(CASE, files, base)
    placement = ["--adapter-placement", "output" if request.param == "bapna_firat" else "houlsby"]
    run_train(our_argv(CASE, files, base, root / "adapters", *placement))
    assert export_adapters_main([str(root / "adapters" / "checkpoint_last.pt"), "--output-dir", str(root / "exported")]) == 0
    args = train_args(our_argv(CASE, files, base, root / "unused", *placement))
    task = tasks.setup_task(args)
    models, _ = checkpoint_utils.load_model_ensemble([str(root / "adapters" / "checkpoint_last.pt")], task=task)
    return {"root": root, "task": task, "fairseq": models[0].eval(), "args": args,
            "base_state": checkpoint_utils.load_checkpoint_to_cpu(str(base))["model"]}


def batch(task):
    """Source rows (language token, words, </s>) of equal length, and teacher-forced decoder inputs."""
    rows = torch.stack([tokens(task, SRC, render("en", [c, (c + 5) % 12, (c + 7) % 12])) for c in range(4)])
    dictionary = task.source_dictionary
    prev = torch.cat([torch.full((4, 1), dictionary.eos()), torch.full((4, 1), dictionary.index(f"__{TGT}__")),
                      rows[:, 1:-1]], dim=1)
    return rows, prev


def fairseq_logits(model, rows, prev, key):
    from nmt.routing import AdapterRoute

    keys = [key] * len(rows)
    with torch.no_grad():
        return model(rows, torch.full((len(rows),), rows.shape[1]), prev,
                     adapter_route=AdapterRoute.from_keys(keys, keys))[0]


def fairseq_beam(task, model, rows, key):
    """fairseq's beam search (4 beams), the target language token forced first, as the task's inference does."""
    from fairseq.sequence_generator import SequenceGenerator

    from nmt.routing import AdapterRoute

    keys = [key] * len(rows)
    generator = SequenceGenerator([model], task.target_dictionary, beam_size=4, max_len_a=0, max_len_b=8, min_len=1)
    route = AdapterRoute.from_keys(keys, keys)
    sample = {"net_input": {"src_tokens": rows, "src_lengths": torch.full((len(rows),), rows.shape[1]),
                            "adapter_route": route}}
    prefix = torch.full((len(rows), 1), task.target_dictionary.index(f"__{TGT}__"))
    with torch.no_grad():
        hypos = generator.generate([model], sample, prefix_tokens=prefix)
    return [h[0]["tokens"].tolist() for h in hypos]


class EndLikeFairseq:
    """At the last step only </s> may follow, with the model's own log-probability (fairseq's rule at
    max_len_b); transformers' ``forced_eos_token_id`` gives it probability 1 instead, which ranks beams otherwise."""

    def __init__(self, length: int, eos: int = 2):
        self.length, self.eos = length, eos

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] == self.length - 1:
            keep = scores[:, self.eos].clone()
            scores = torch.full_like(scores, -float("inf"))
            scores[:, self.eos] = keep
        return scores


def hf_beam(host, rows, tgt_token):
    """transformers' beam search over the same lengths as fairseq's (equal lengths: the two length
    normalisations rank alike)."""
    from transformers import LogitsProcessorList

    prompt = torch.tensor([[2, tgt_token]] * len(rows))
    with torch.no_grad():
        out = host.generate(rows, decoder_input_ids=prompt, src_langs=[SRC] * len(rows), tgt_langs=[TGT] * len(rows),
                            num_beams=4, do_sample=False, max_new_tokens=8,
                            logits_processor=LogitsProcessorList([EndLikeFairseq(2 + 8)]))
    return [[t for t in row[1:].tolist() if t != 1] for row in out]  # fairseq's hypotheses lack the start token


def test_fairseq_trained_adapter_gives_the_same_logits_and_beams_in_transformers(trained):
    task, model = trained["task"], trained["fairseq"]
    rows, prev = batch(task)
    key = f"{SRC}-{TGT}"
    hf_model = to_transformers(trained["base_state"], trained["args"])
    host = Seq2SeqAdapterHost(hf_model, route_by="pair")
    bare = hf_model(input_ids=rows, decoder_input_ids=prev).logits
    assert host.load_adapter(trained["root"] / "exported" / key) == key
    with host.routed([SRC] * 4, [TGT] * 4):
        ours = hf_model(input_ids=rows, decoder_input_ids=prev).logits
    theirs = fairseq_logits(model, rows, prev, key)
    assert (ours - theirs).abs().max() <= 1e-5
    assert (bare - theirs).abs().max() > 1e-3  # the adapters do change the output: the check is not vacuous
    assert hf_beam(host, rows, int(prev[0, 1])) == fairseq_beam(task, model, rows, key)


def test_transformers_adapter_loads_into_the_fairseq_plugin(trained, tmp_path):
    from nmt.adapter_files import load_adapter_dirs

    task, model = trained["task"], trained["fairseq"]
    rows, prev = batch(task)
    hf_model = to_transformers(trained["base_state"], trained["args"])
    host = Seq2SeqAdapterHost(hf_model, route_by="pair")
    key = f"{SRC}-{TGT}"
    host.add_adapter(key, model.encoder.layers[0].site_banks()[0][1].adapters[key].config)
    randomise_adapters(hf_model, std=0.3)
    host.save_adapter(tmp_path / key, key)
    with host.routed([SRC] * 4, [TGT] * 4):
        ours = hf_model(input_ids=rows, decoder_input_ids=prev).logits
    before = fairseq_logits(model, rows, prev, key)
    # The fingerprints name each framework's own module tree, so the plugin is told to load across hosts.
    assert load_adapter_dirs(model, [tmp_path / key], force=True) == [key]
    theirs = fairseq_logits(model, rows, prev, key)
    assert (ours - theirs).abs().max() <= 1e-5 and (before - theirs).abs().max() > 1e-3
    assert hf_beam(host, rows, int(prev[0, 1])) == fairseq_beam(task, model, rows, key)
