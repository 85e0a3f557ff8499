"""LoRA and prefix tuning in xling: hooks on a tiny XLM-R (hidden 32), and train-task / eval end to end.

As the other methods are tested: LoRA is exactly the identity at init (B = 0);
prefix tuning is not (every query also attends to the prefix rows), so what it
defines is tested instead (padding stays masked; no active prefix = the base);
the parameter-count formulas; only the intended tensors move in training; the
base stays bitwise unchanged; save then load gives identical outputs; and the
reparametrised prefix (Li & Liang's MLP) ejects to flat rows with the same outputs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification, XLMRobertaModel

from adapter_core import (LoRAAdapter, PrefixTuning, Stack, lora_2021, madx_language, prefix_tuning_2021,
                          read_adapter_config, summarize)
from xling.adapter_io import load_madx_adapter, save_madx_adapter
from xling.attach import TransformersHost
from xling.attention_sites import eject_prefix_tuning
from xling.cli import main
from xling.cli_methods import adapter_config_from_args
from xling.inference import load_task_model

IDS = torch.tensor([[0, 5, 17, 33, 8, 21, 2], [0, 9, 44, 12, 2, 1, 1]])
MASK = (IDS != 1).long()
CONFIGS = {"lora": lambda: lora_2021(32, rank=4), "prefix_tuning": lambda: prefix_tuning_2021(32, 5, mlp_dim=0),
           "prefix_tuning_mlp": lambda: prefix_tuning_2021(32, 5, mlp_dim=16)}


def tiny(implementation: str = "sdpa", layers: int = 3, cls=XLMRobertaModel):
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=layers, num_attention_heads=4,
                              intermediate_size=64, max_position_embeddings=40, pad_token_id=1, hidden_dropout_prob=0.0,
                              attention_probs_dropout_prob=0.0, attn_implementation=implementation)
    return cls(config).eval()


def hidden(model, ids=IDS, mask=MASK):
    return model(ids, attention_mask=mask).last_hidden_state


def test_lora_is_bitwise_the_identity_at_init_and_counts_2_r_2d_per_layer():
    model = tiny()
    base = hidden(model)
    host = TransformersHost(model)
    host.add_adapter("l", role="task", config=lora_2021(32, rank=4))
    host.set_active("l")
    assert torch.equal(hidden(model), base)
    host.train_only(["l"], train_head=False)
    per_layer = 2 * LoRAAdapter.expected_parameter_count(32, 32, 4)  # query and value
    assert summarize(model).trainable == 3 * per_layer == 1536
    assert sorted(host.adapter_tensors("l"))[:2] == ["layers.0.query.lora_A", "layers.0.query.lora_B"]


def test_prefix_moves_the_output_at_init_and_counts_2_l_d_per_layer():
    model = tiny()
    base = hidden(model)
    host = TransformersHost(model)
    host.add_adapter("p", role="task", config=prefix_tuning_2021(32, 5, mlp_dim=0))
    host.set_active("p")
    assert (hidden(model) - base).abs().max() > 1e-3  # not an identity: queries attend to the prefix rows
    host.set_active(None)
    assert torch.equal(hidden(model), base)  # no active prefix: the base attention, through the same function
    host.train_only(["p"], train_head=False)
    assert summarize(model).trainable == 3 * PrefixTuning.expected_parameter_count(32, 5) == 960
    host.add_adapter("m", role="task", config=prefix_tuning_2021(32, 5, mlp_dim=16))  # the encoder counted once
    host.train_only(["m"], train_head=False)
    assert summarize(model).trainable == PrefixTuning.training_parameter_count(32, 5, 16, 3) == 5 * 32 + 16 * 33 + 3 * 1088


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_prefix_keeps_padding_masked_in_sdpa_and_eager(implementation):
    """A padded sentence gives the same states at its real tokens as the sentence alone: the mask was widened."""
    model = tiny(implementation)
    host = TransformersHost(model)
    host.add_adapter("p", role="task", config=prefix_tuning_2021(32, prefix_length=5))
    host.set_active("p")
    assert model.config._attn_implementation == f"prefix_tuning+{implementation}"
    padded = hidden(model)[1, :5]
    alone = hidden(model, IDS[1:, :5], MASK[1:, :5])[0]
    assert torch.allclose(padded, alone, atol=1e-5)


def test_sdpa_and_eager_give_the_same_prefixed_attention():
    outputs = []
    for implementation in ("sdpa", "eager"):
        model = tiny(implementation)
        host = TransformersHost(model)
        torch.manual_seed(1)
        host.add_adapter("p", role="task", config=prefix_tuning_2021(32, prefix_length=5))
        host.set_active("p")
        outputs.append(hidden(model) * MASK[..., None])
    assert torch.allclose(*outputs, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_training_moves_only_the_module_and_head_and_the_base_stays_bitwise(kind):
    model = tiny(cls=lambda c: XLMRobertaForTokenClassification(c.__class__(**{**c.to_dict(), "num_labels": 3})))
    host = TransformersHost(model)
    host.add_adapter("en", role="language", config=madx_language(32), invertible=False)
    host.add_adapter("t", role="task", config=CONFIGS[kind]())
    host.set_active(Stack("en", "t"))
    keep = set(host.train_only(["t"], train_head=True))
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    labels = torch.randint(0, 3, IDS.shape)
    for _ in range(3):
        optimizer.zero_grad()
        model(IDS, attention_mask=MASK, labels=labels).loss.backward()
        optimizer.step()
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    mine = set(host.adapter_tensors("t", prefixed=True))
    assert mine <= moved  # LoRA's A moves only once B has: 3 steps reach both
    assert moved <= keep and keep == mine | set(host.head_parameter_names())
    assert not any(".madx_adapters.adapters.en." in k for k in moved)  # the language adapter stays frozen


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_save_then_load_gives_identical_outputs(tmp_path, kind):
    model = tiny()
    host = TransformersHost(model)
    host.add_adapter("t", role="task", config=CONFIGS[kind]())
    with torch.no_grad():
        for tensor in host.adapter_tensors("t").values():
            tensor.normal_(0, 0.3)
    host.set_active("t")
    expected = hidden(model)
    save_madx_adapter(host, "t", tmp_path / "t")
    assert read_adapter_config(tmp_path / "t")["config"]["kind"] == CONFIGS[kind]().kind
    fresh = TransformersHost(tiny())
    name = load_madx_adapter(fresh, tmp_path / "t")
    fresh.set_active(name)
    assert torch.equal(hidden(fresh.model), expected)
    with fresh.adapters_skipped([0, 1, 2]):
        assert torch.equal(hidden(fresh.model), hidden(tiny()))


def test_ejecting_a_reparametrised_prefix_keeps_the_outputs_and_saves_flat_rows(tmp_path):
    model = tiny()
    host = TransformersHost(model)
    host.add_adapter("t", role="task", config=CONFIGS["prefix_tuning_mlp"]())
    host.set_active("t")
    expected = hidden(model)
    eject_prefix_tuning(host, "t")
    assert host.adapters["t"].config.prefix_mlp_dim == 0
    assert torch.equal(hidden(model), expected)
    save_madx_adapter(host, "t", tmp_path / "t")
    assert sorted(load_file(str(tmp_path / "t" / "adapter_model.safetensors")))[:2] == [
        "layers.0.prefix.prefix_keys", "layers.0.prefix.prefix_values"]
    fresh = TransformersHost(tiny())
    fresh.set_active(load_madx_adapter(fresh, tmp_path / "t"))
    assert torch.equal(hidden(fresh.model), expected)


def _args(**given) -> argparse.Namespace:
    flags = dict(adapter_kind="lora", adapter_placement=None, adapter_reduction_factor=None, adapter_phm_dim=None,
                 adapter_dim=None, adapter_lora_alpha=None, adapter_prefix_mlp_dim=None, model="unused")
    return argparse.Namespace(**{**flags, **given})


@pytest.mark.parametrize("given, message", [
    (dict(adapter_placement="houlsby"), "--adapter-kind lora goes at query_value or query_key_value"),
    (dict(adapter_reduction_factor=4.0), "give the width once, with --adapter-dim"),
    (dict(adapter_prefix_mlp_dim=4), "--adapter-prefix-mlp-dim applies to --adapter-kind prefix_tuning only"),
    (dict(adapter_kind="prefix_tuning", adapter_lora_alpha=4.0), "--adapter-lora-alpha applies to --adapter-kind lora"),
    (dict(adapter_dim=0), "--adapter-dim must be positive"),
    (dict(adapter_kind="bottleneck", adapter_lora_alpha=4.0), "--adapter-lora-alpha applies to --adapter-kind lora"),
    (dict(adapter_kind="compacter++", adapter_placement="prefix"), "--adapter-kind prefix_tuning, not compacter"),
])
def test_bad_flags_are_refused_in_one_line(given, message):
    with pytest.raises(ValueError, match=message):
        adapter_config_from_args(_args(**given), "task")


STEPS = ["--max-steps", "2", "--save-steps", "2", "--batch-size", "8", "--cpu", "--learning-rate", "1e-2",
         "--max-length", "32"]


def _prefix_rows(trained: dict, layer: int) -> torch.Tensor:
    """[P_k, P_v] of one layer, computed from a checkpoint of a reparametrised prefix (the MLP's tensors)."""
    def one(suffix, i=layer):
        return next(v for k, v in trained.items() if f"layer.{i}.attention.self.madx_prefixes" in k and k.endswith(suffix))
    hidden = torch.tanh(one("encoder.embedding", 0) @ one("encoder.mlp_in.weight", 0).T + one("encoder.mlp_in.bias", 0))
    return hidden @ one("mlp_out.weight").T + one("mlp_out.bias")


@pytest.mark.parametrize("kind, flags", [("lora", ["--adapter-dim", "2", "--adapter-lora-alpha", "4"]),
                                         ("prefix_tuning", ["--adapter-dim", "3", "--adapter-prefix-mlp-dim", "8"])])
def test_train_task_and_eval_end_to_end(workspace, en_language_adapter, tree_digest, tmp_path, kind, flags):
    before = tree_digest(workspace["model"])
    out = tmp_path / kind
    assert main(["train-task", "--task", "ner", "--model", str(workspace["model"]), "--lang-adapter",
                 str(en_language_adapter), "--train", str(workspace["data"] / "en.panx"), "--output-dir", str(out),
                 "--adapter-kind", kind, *flags, *STEPS]) == 0
    assert tree_digest(workspace["model"]) == before  # the base bitwise unchanged
    config = read_adapter_config(out / "adapter")["config"]
    assert config["kind"] == kind and config["bottleneck_dim"] == (2 if kind == "lora" else 3)
    assert config["prefix_mlp_dim"] == 0  # prefix tuning saves the flat rows its MLP made
    # every tensor of the trained model (its last Trainer checkpoint) comes back from the saved adapter + head;
    # for the reparametrised prefix, the rows its MLP makes
    trained = load_file(str(out / "checkpoints" / "checkpoint-2" / "trainable.safetensors"))
    loaded = load_task_model(str(workspace["model"]), str(out / "adapter"), str(en_language_adapter))
    state = loaded.model.state_dict()
    assert any(("lora_A" if kind == "lora" else "mlp_out") in k for k in trained)
    for key, value in trained.items():
        if "madx_prefixes" not in key:
            assert torch.equal(state[key], value), key
    if kind == "prefix_tuning":
        flat = {k: v for k, v in state.items() if "madx_prefixes" in k}
        layers = range(len(loaded.host.layers))
        assert len(flat) == 2 * len(layers) >= 4  # key and value rows in each of the tiny model's layers
        for layer in layers:
            keys = next(v for k, v in flat.items() if f"layer.{layer}." in k and k.endswith("prefix_keys"))
            values = next(v for k, v in flat.items() if f"layer.{layer}." in k and k.endswith("prefix_values"))
            assert torch.allclose(torch.cat([keys, values], dim=1), _prefix_rows(trained, layer), atol=1e-6)
    output = tmp_path / "eval.json"
    assert main(["eval", "--model", str(workspace["model"]), "--task-adapter", str(out / "adapter"), "--lang-adapter",
                 str(en_language_adapter), "--lang", "sw", "--data", str(workspace["data"] / "sw.panx"), "--output",
                 str(output)]) == 0
    assert "f1" in json.loads(output.read_text())


def test_bare_encoder_rows_of_the_comparison(workspace, en_language_adapter, tmp_path):
    """studies.xling_comparison: a LoRA or prefix-tuning module trained with --lang-adapter none is scored as its
    own row (bare_lora, bare_prefix_tuning, beside bare_task); over a language adapter it is refused, not mislabelled."""
    from studies import xling_comparison as comparison

    results, data = str(tmp_path / "results"), str(workspace["data"] / "sw.panx")
    for kind, flags in (("lora", ["--adapter-dim", "2"]), ("prefix_tuning", ["--adapter-dim", "3"])):
        out = tmp_path / kind
        assert main(["train-task", "--task", "ner", "--model", str(workspace["model"]), "--lang-adapter", "none",
                     "--train", str(workspace["data"] / "en.panx"), "--output-dir", str(out), "--adapter-kind", kind,
                     *flags, *STEPS]) == 0
        assert comparison.main(["eval-adapter", "--model", str(workspace["model"]), "--task-adapter",
                                str(out / "adapter"), "--data", f"en={data}", f"sw={data}", "--max-length", "32",
                                "--train-size", "all", "--output-dir", results]) == 0
    rows = sorted(str(p.relative_to(results)) for p in Path(results).rglob("*.json"))
    assert rows == [f"ner/{row}/nall/{lang}-seed42.json" for row in ("bare_lora", "bare_prefix_tuning")
                    for lang in ("en", "sw")]
    summary = comparison.write_report(results, str(tmp_path / "report"), "en")
    assert set(summary["ner"]["sizes"]["all"]["rows"]) == {"bare_lora", "bare_prefix_tuning"}
    assert "LoRA on the bare encoder" in (tmp_path / "report" / "report.md").read_text()
    over = tmp_path / "lora-over-en"
    assert main(["train-task", "--task", "ner", "--model", str(workspace["model"]), "--lang-adapter",
                 str(en_language_adapter), "--train", str(workspace["data"] / "en.panx"), "--output-dir", str(over),
                 "--adapter-kind", "lora", *STEPS]) == 0
    assert comparison.main(["eval-adapter", "--model", str(workspace["model"]), "--task-adapter",
                            str(over / "adapter"), "--lang-adapters", f"en={en_language_adapter}",
                            f"sw={en_language_adapter}", "--data", f"en={data}", f"sw={data}", "--train-size", "all",
                            "--output-dir", str(tmp_path / "refused")]) == 1
    assert not (tmp_path / "refused").exists()
