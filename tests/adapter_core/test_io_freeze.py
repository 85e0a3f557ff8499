"""Freezing, the on-disk format, fingerprints, and what adapter_core imports."""

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from adapter_core import (AdapterBank, AdapterFormatError, FingerprintMismatchError, bapna_firat_2019, check_shapes,
                          fingerprint_model, freeze_base, load_adapter, save_adapter)


class TinyHost(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)
        self.bank = AdapterBank(bapna_firat_2019(8, 2), ["en-de", "en-fr"])

    def forward(self, x, key):
        return self.head(self.bank(self.norm(self.layer(x)), key))


def adapter_tensors(host, name):
    prefix = f"bank.adapters.{name}."
    return {k[len(prefix):]: v for k, v in host.state_dict().items() if k.startswith(prefix)}


def test_freeze_keeps_only_adapters_and_counts():
    host = TinyHost()
    summary = freeze_base(host)
    trainable = {n for n, p in host.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("bank.") for n in trainable)
    per = 2 * 8 * 2 + 8 + 2 + 2 * 8
    assert summary.adapter == summary.trainable == 2 * per
    assert summary.per_adapter == {"bank.adapters.en-de": per, "bank.adapters.en-fr": per}
    assert summary.total == sum(p.numel() for p in host.parameters())
    assert "trainable parameters" in summary.format()
    summary = freeze_base(host, train_layer_norms=True, trainable_prefixes=["head."])
    assert host.norm.weight.requires_grad and host.head.weight.requires_grad and not host.layer.weight.requires_grad


def test_freeze_with_adapters_frozen_trains_only_what_the_rules_name():
    """How the hosts train some adapters (xling's train_only) or fusion layers over frozen adapters (nmt)."""
    host = TinyHost()
    summary = freeze_base(host, train_adapters=False, extra_trainable=lambda n: ".en-de." in n)
    trainable = {n for n, p in host.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("bank.adapters.en-de.") for n in trainable)
    assert summary.trainable == 2 * 8 * 2 + 8 + 2 + 2 * 8


def test_training_changes_adapter_leaves_base_bitwise():
    host = TinyHost()
    for p in host.bank.parameters():
        nn.init.normal_(p, std=0.1)
    nn.init.constant_(host.bank.adapters["en-de"].down.bias, 0.5)  # keep the ReLU units alive
    freeze_base(host)
    base_before = {k: v.clone() for k, v in host.state_dict().items() if not k.startswith("bank.")}
    adapter_before = host.bank.adapters["en-de"].up.weight.clone()
    opt = torch.optim.SGD([p for p in host.parameters() if p.requires_grad], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        host(torch.randn(4, 8), "en-de").pow(2).sum().backward()
        opt.step()
    assert host.layer.weight.grad is None, "no gradient is computed for frozen weights"
    for k, v in base_before.items():
        assert torch.equal(host.state_dict()[k], v), k
    assert not torch.equal(host.bank.adapters["en-de"].up.weight, adapter_before)


def test_save_load_round_trip_identical_outputs(tmp_path):
    host = TinyHost()
    for p in host.bank.parameters():
        nn.init.normal_(p, std=0.1)
    fingerprint = fingerprint_model(host)
    path = save_adapter(tmp_path / "en-de", adapter_tensors(host, "en-de"), host.bank.config, fingerprint,
                        name="en-de", metadata={"side": "both"})
    config_text = (path / "adapter_config.json").read_text()
    assert config_text == json.dumps(json.loads(config_text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    x = torch.randn(3, 8)
    expected = host(x, "en-de")
    other = TinyHost()
    other.load_state_dict({k: v for k, v in host.state_dict().items() if "bank." not in k}, strict=False)
    saved = load_adapter(path, expected_fingerprint=fingerprint_model(other))
    assert saved.name == "en-de" and saved.metadata == {"side": "both"} and saved.config == host.bank.config
    check_shapes(saved.tensors, other.bank.adapters["en-de"].state_dict(), "en-de")
    other.bank.adapters["en-de"].load_state_dict(saved.tensors)
    assert torch.equal(other(x, "en-de"), expected)
    assert not list(tmp_path.glob("**/*.tmp")), "no temporary files are left"


def test_fingerprint_ignores_adapters_but_sees_base():
    host = TinyHost()
    fp = fingerprint_model(host)
    host.bank.add("de-fr")
    assert fingerprint_model(host) == fp
    with torch.no_grad():
        host.layer.weight.view(-1)[0] += 1.0
    assert fingerprint_model(host) != fp


def test_foreign_base_refused_unless_forced(tmp_path):
    host = TinyHost()
    save_adapter(tmp_path / "a", adapter_tensors(host, "en-de"), host.bank.config, fingerprint_model(host))
    foreign = fingerprint_model(TinyHost())
    with pytest.raises(FingerprintMismatchError) as err:
        load_adapter(tmp_path / "a", expected_fingerprint=foreign)
    assert fingerprint_model(host) in str(err.value) and foreign in str(err.value)
    assert load_adapter(tmp_path / "a", expected_fingerprint=foreign, force=True).tensors


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(AdapterFormatError, match=r"\(2, 8\).*\(4, 8\)"):
        check_shapes({"down.weight": torch.zeros(2, 8)}, {"down.weight": torch.zeros(4, 8)}, "here")


@pytest.mark.parametrize("damage", ["truncate_weights", "garbage_weights", "bad_json", "missing_weights",
                                    "not_adapter_json", "bad_config_field"])
def test_corrupt_files_get_clear_errors(tmp_path, damage):
    host = TinyHost()
    path = save_adapter(tmp_path / "a", adapter_tensors(host, "en-de"), host.bank.config, fingerprint_model(host))
    weights, config = path / "adapter_model.safetensors", path / "adapter_config.json"
    if damage == "truncate_weights":
        weights.write_bytes(weights.read_bytes()[:-40])
    elif damage == "garbage_weights":
        weights.write_bytes(b"\x00garbage" * 3)
    elif damage == "bad_json":
        config.write_text(config.read_text()[:-10])
    elif damage == "missing_weights":
        weights.unlink()
    elif damage == "not_adapter_json":
        config.write_text("[1, 2]")
    elif damage == "bad_config_field":
        doc = json.loads(config.read_text())
        doc["config"]["bogus"] = 1
        config.write_text(json.dumps(doc))
    with pytest.raises(AdapterFormatError) as err:
        load_adapter(path)
    assert str(path) in str(err.value)


def test_missing_directory():
    with pytest.raises(FileNotFoundError, match="adapter directory not found"):
        load_adapter("/nonexistent/adapter")


def test_adapter_core_imports_neither_fairseq_nor_transformers():
    code = ("import sys, adapter_core; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('fairseq', 'fairseq_cli', 'transformers')]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("change, message", [
    (lambda doc: doc["config"].update(input_layer_norm="false"), "field 'input_layer_norm' must be bool"),
    (lambda doc: doc["config"].update(bottleneck_dim="2"), "field 'bottleneck_dim' must be int | None"),
    (lambda doc: doc["config"].update(hidden_dim=True), "field 'hidden_dim' must be int"),
    (lambda doc: doc.update(format_version=99), "format_version 99 is not one this version reads"),
])
def test_config_types_and_format_version_are_checked(tmp_path, change, message):
    """"false" the string used to load as a true bool, and unknown format versions loaded silently."""
    host = TinyHost()
    path = save_adapter(tmp_path / "a", adapter_tensors(host, "en-de"), host.bank.config, fingerprint_model(host))
    config = path / "adapter_config.json"
    doc = json.loads(config.read_text())
    change(doc)
    config.write_text(json.dumps(doc))
    with pytest.raises(AdapterFormatError, match=message):
        load_adapter(path)


def test_nan_or_infinite_weights_are_refused_at_load(tmp_path):
    host = TinyHost()
    tensors = adapter_tensors(host, "en-de")
    tensors["up.weight"] = tensors["up.weight"].clone()
    tensors["up.weight"][0, 0] = float("nan")
    path = save_adapter(tmp_path / "a", tensors, host.bank.config, fingerprint_model(host))
    with pytest.raises(AdapterFormatError, match="tensor up.weight holds NaN or infinite values"):
        load_adapter(path)
