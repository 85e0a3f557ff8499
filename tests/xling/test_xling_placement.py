"""Adapter placements through xling's hooks: MAD-X's Pfeiffer FFN output, Houlsby's two sites, Compacter(++).

On the session's tiny XLM-R (hidden 32, 2 layers, FFN 64).
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import XLMRobertaModel

from adapter_core import (BottleneckAdapter, Site, Stack, compacter_2021, compacter_plus_plus_2021, houlsby_2019,
                          madx_task, read_adapter_config)
from xling.adapter_io import LAYER_NORMS, load_madx_adapter, save_madx_adapter
from xling.attach import TransformersHost
from xling.cli import main
from xling.trainable_checkpoints import TRAINABLE_WEIGHTS

D, LAYERS = 32, 2
IDS = torch.tensor([[0, 5, 17, 33, 8, 21, 2], [0, 9, 44, 12, 2, 1, 1]])
MASK = (IDS != 1).long()
# name -> (config, sites); rf 4 gives a bottleneck of 8 (n = 4 divides it)
CONFIGS = {
    "pfeiffer": (madx_task(D, 4), (Site.FFN_PFEIFFER,)),
    "houlsby": (houlsby_2019(D).replace(bottleneck_dim=None, reduction_factor=4), (Site.ATTENTION, Site.FFN)),
    "compacter++": (compacter_plus_plus_2021(D, reduction_factor=4), (Site.FFN_PFEIFFER,)),
    "compacter": (compacter_2021(D, reduction_factor=4), (Site.ATTENTION, Site.FFN)),
}
STEPS = ["--max-steps", "2", "--save-steps", "2", "--batch-size", "8", "--cpu", "--learning-rate", "1e-2",
         "--max-length", "32"]


@pytest.fixture
def base(workspace):
    return XLMRobertaModel.from_pretrained(workspace["model"]).eval()


def hidden(model, setup=None, host=None):
    if host is not None:
        host.set_active(setup)
    with torch.no_grad():
        return model(input_ids=IDS, attention_mask=MASK).last_hidden_state


@pytest.mark.parametrize("name", list(CONFIGS))
def test_each_placement_starts_near_the_frozen_base(base, name):
    config, sites = CONFIGS[name]
    plain = hidden(base)
    host = TransformersHost(base)
    info = host.add_adapter("t", role="task", config=config)
    assert info.config.sites == sites
    adapted = hidden(base, "t", host)
    assert not torch.equal(adapted, plain)  # the adapters run ...
    assert torch.allclose(adapted, plain, atol=0.05, rtol=0), (adapted - plain).abs().max()  # ... near the identity
    if config.kind == "bottleneck":
        host.add_adapter("z", role="task", config=config.replace(init="zero_up"))
        assert torch.equal(hidden(base, "z", host), plain)  # zero up-projections: exactly the base
    assert torch.equal(hidden(base, None, host), plain)  # no active adapter: the base, bit for bit


def test_houlsby_sites_read_the_sublayer_outputs_before_the_residual(base):
    host = TransformersHost(base)
    host.add_adapter("h", role="task", config=CONFIGS["houlsby"][0])
    host.add_adapter("p", role="task", config=CONFIGS["pfeiffer"][0])
    seen, handles = {}, []

    def keep(key, pick=lambda args, output: output):
        return lambda module, args, output: seen.__setitem__(key, pick(args, output))

    for i, layer in enumerate(base.encoder.layer):
        handles += [layer.attention.output.dense.register_forward_hook(keep(f"attn{i}")),
                    layer.output.dense.register_forward_hook(keep(f"ffn{i}")),
                    layer.output.register_forward_pre_hook(lambda m, a, k, i=i: seen.__setitem__(
                        f"x{i}", a[1] if len(a) > 1 else k["input_tensor"]), with_kwargs=True),
                    layer.attention.output.madx_adapters.adapters["h"].register_forward_hook(
                        keep(f"h.attention{i}", lambda args, output: args[0])),
                    layer.output.madx_adapters.adapters["h"].register_forward_hook(
                        keep(f"h.ffn{i}", lambda args, output: (args[0], output))),
                    layer.output.madx_adapters.adapters["p"].register_forward_hook(
                        keep(f"p.ffn{i}", lambda args, output: args[0]))]
    hidden(base, Stack("h", "p"), host)  # eval: dropout is the identity, so h is the dense layer's output
    for handle in handles:
        handle.remove()
    for i, layer in enumerate(base.encoder.layer):
        assert torch.equal(seen[f"h.attention{i}"], seen[f"attn{i}"])  # Houlsby 1: attention projection output
        h_in, h_out = seen[f"h.ffn{i}"]
        assert torch.equal(h_in, seen[f"ffn{i}"])  # Houlsby 2: FFN projection output, no LayerNorm before it
        # stacked above it, the Pfeiffer adapter reads LN(r + x) of the Houlsby adapter's output r
        assert torch.allclose(seen[f"p.ffn{i}"], layer.output.LayerNorm(h_out + seen[f"x{i}"]))


@pytest.mark.parametrize("train_norms", [False, True])
def test_houlsby_parameter_counts_follow_the_formula(base, train_norms):
    host = TransformersHost(base)
    host.add_adapter("t", role="task", config=CONFIGS["houlsby"][0])
    m = 8
    per_adapter = 2 * D * m + D + m
    assert per_adapter == BottleneckAdapter.expected_parameter_count(D, m, False)
    assert sum(t.numel() for t in host.adapter_tensors("t").values()) == LAYERS * 2 * per_adapter
    kept = host.train_only(["t"], train_head=False, train_layer_norms=train_norms)
    layer_norms = (1 + 2 * LAYERS) * 2 * D  # the embeddings' LayerNorm and two per layer
    assert sum(p.numel() for p in base.parameters() if p.requires_grad) == \
        LAYERS * 2 * per_adapter + (layer_norms if train_norms else 0)
    assert len(kept) == LAYERS * 2 * 4 + (2 * (1 + 2 * LAYERS) if train_norms else 0)


@pytest.mark.parametrize("train_norms", [False, True])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_an_optimiser_step_moves_only_adapters_and_asked_for_layer_norms(base, name, train_norms):
    host = TransformersHost(base)
    host.add_adapter("t", role="task", config=CONFIGS[name][0])
    host.set_active("t")
    host.train_only(["t"], train_head=False, train_layer_norms=train_norms)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    base.train()
    optimizer = torch.optim.Adam([p for p in base.parameters() if p.requires_grad], lr=1e-2)
    target = torch.randn(2, IDS.shape[1], D, generator=torch.Generator().manual_seed(0))
    loss = (base(input_ids=IDS, attention_mask=MASK).last_hidden_state - target).pow(2).mean()
    loss.backward()
    optimizer.step()
    moved = {k for k, v in base.state_dict().items() if not torch.equal(v, before[k])}
    adapters = set(host.adapter_tensors("t", prefixed=True))
    norms = set(host.layer_norm_parameter_names()) if train_norms else set()
    assert moved == adapters | norms
    assert all(".LayerNorm." in n for n in norms) and len(norms) == (2 * (1 + 2 * LAYERS) if train_norms else 0)


@pytest.mark.parametrize("name", ["houlsby", "compacter"])
def test_houlsby_sites_save_and_load(base, workspace, tmp_path, name):
    host = TransformersHost(base)
    host.add_adapter("t", role="task", config=CONFIGS[name][0])
    with torch.no_grad():
        for tensor in host.adapter_tensors("t").values():
            tensor.normal_(0, 0.3)
    save_madx_adapter(host, "t", tmp_path / "t")
    keys = set(load_file(str(tmp_path / "t" / "adapter_model.safetensors")))
    assert any(k.startswith("layers.0.attention.") for k in keys) and any(k.startswith("layers.1.ffn.") for k in keys)
    if name == "compacter":  # one shared A, stored once (first layer, attention site)
        assert [k for k in keys if "phm_rule" in k] == ["layers.0.attention.phm_rule.weight"]
    fresh = XLMRobertaModel.from_pretrained(workspace["model"]).eval()
    other = TransformersHost(fresh)
    assert load_madx_adapter(other, tmp_path / "t") == "t"
    assert torch.equal(hidden(fresh, "t", other), hidden(base, "t", host))


def test_fusion_and_adapterhub_export_keep_to_the_pfeiffer_placement(base, tmp_path):
    from adapter_core import Fuse
    from xling.adapterhub import NotExportableError, export_adapterhub

    host = TransformersHost(base)
    host.add_adapter("h", role="task", config=CONFIGS["houlsby"][0])
    host.add_adapter("p", role="task", config=CONFIGS["pfeiffer"][0])
    with pytest.raises(ValueError, match="AdapterFusion fuses Pfeiffer-placed adapters"):
        host.add_fusion(Fuse("h", "p"))
    with pytest.raises(NotExportableError, match="placed 'houlsby' is not exported"):
        export_adapterhub(host, "h", tmp_path / "ah")


def train_task(workspace, lang_adapter, out, *extra) -> int:
    return main(["train-task", "--task", "ner", "--model", str(workspace["model"]), "--lang-adapter", str(lang_adapter),
                 "--train", str(workspace["data"] / "en.panx"), "--output-dir", str(out), *STEPS, *extra])


def test_train_task_houlsby_with_layer_norms_end_to_end(workspace, en_language_adapter, tmp_path):
    from xling.inference import load_task_model

    out = tmp_path / "houlsby"
    assert train_task(workspace, en_language_adapter, out, "--adapter-placement", "houlsby", "--train-layer-norms") == 0
    document = read_adapter_config(out / "adapter")
    assert document["config"]["placement"] == "houlsby" and document["config"]["init"] == "houlsby"
    assert json.loads((out / "adapter" / "task.json").read_text())["train_layer_norms"] is True
    # the Trainer's checkpoint holds what trains: of the base, exactly the encoder's LayerNorms, all moved
    start = load_file(str(workspace["model"] / "model.safetensors"))
    trained = load_file(str(out / "checkpoints" / "checkpoint-2" / TRAINABLE_WEIGHTS))
    shared = [k for k in trained if k in start and k.startswith("roberta.")]
    moved = {k for k in shared if not torch.equal(trained[k], start[k])}
    assert moved == set(shared) == {k for k in shared if ".LayerNorm." in k} and len(moved) == 2 * (1 + 2 * LAYERS)
    norms = load_file(str(out / "adapter" / LAYER_NORMS))
    assert {"roberta." + k for k in norms} == moved

    loaded = load_task_model(str(workspace["model"]), str(out / "adapter"), str(en_language_adapter))
    state = loaded.model.state_dict()
    assert all(torch.equal(state["roberta." + k], v) for k, v in norms.items())  # eval restores them
    assert main(["eval", "--model", str(workspace["model"]), "--task-adapter", str(out / "adapter"), "--lang-adapter",
                 str(en_language_adapter), "--lang", "sw", "--data", str(workspace["data"] / "sw.panx"), "--output",
                 str(tmp_path / "sw.json")]) == 0
    assert main(["export", "--format", "adapterhub", "--adapter", str(out / "adapter"), "--output-dir",
                 str(tmp_path / "ah")]) == 1  # AdapterHub's files carry neither the placement nor the LayerNorms


def test_train_task_compacter_takes_houlsby_sites(workspace, en_language_adapter, tmp_path):
    out = tmp_path / "compacter"
    assert train_task(workspace, en_language_adapter, out, "--adapter-kind", "compacter", "--adapter-reduction-factor", "4",
                      "--adapter-phm-dim", "4") == 0
    document = read_adapter_config(out / "adapter")
    assert (document["config"]["kind"], document["config"]["placement"]) == ("compacter", "houlsby")
    assert not (out / "adapter" / LAYER_NORMS).exists()
    assert main(["eval", "--model", str(workspace["model"]), "--task-adapter", str(out / "adapter"), "--lang-adapter",
                 str(en_language_adapter), "--lang", "sw", "--data", str(workspace["data"] / "sw.panx"), "--output",
                 str(tmp_path / "sw.json")]) == 0
