"""adapter_core.load_adapter_into: every check runs before the host changes, and a failed one leaves it as it was."""

from __future__ import annotations

import pytest
import torch

from adapter_core import (AdapterFormatError, FingerprintMismatchError, FusionConfig, build_adapter, madx_task,
                          save_adapter, save_fusion)
from adapter_core.loading import LoadPlan, copy_tensors, load_adapter_into

HIDDEN = 16


class ToyHost:
    """A host with one adapter site per layer: enough to exercise the routine without a framework."""

    def __init__(self, layers: int = 2, fingerprint: str = "base-a"):
        self.layers = layers
        self.fingerprint = fingerprint
        self.adapters: dict[str, list[torch.nn.Module]] = {}
        self.calls: list[str] = []

    def base_fingerprint(self) -> str:
        return self.fingerprint

    def plan_adapter(self, name, saved, where):
        self.calls.append(f"plan {name}")
        if saved.metadata.get("skip"):
            return None
        self.adapters[name] = modules = [build_adapter(saved.config) for _ in range(self.layers)]
        expected = {f"layers.{i}.{n}": t for i, m in enumerate(modules) for n, t in m.state_dict().items()}

        def install(tensors):
            self.calls.append(f"install {name}")
            copy_tensors(expected, tensors)
        return LoadPlan(expected, install, rollback=lambda: self.adapters.pop(name))

    def plan_fusion(self, name, saved, where):
        self.calls.append(f"fusion {name}")
        return LoadPlan({}, lambda tensors: self.calls.append(f"install fusion {name}"))


def _saved_adapter(tmp_path, layers=2, fingerprint="base-a", name="en", metadata=None, dtype=torch.float32):
    config = madx_task(HIDDEN)
    module = build_adapter(config)
    torch.nn.init.normal_(module.up.weight)  # not the identity, so a copy shows
    tensors = {f"layers.{i}.{n}": t.to(dtype).clone() for i in range(layers) for n, t in module.state_dict().items()}
    directory = tmp_path / name
    save_adapter(directory, tensors, config, fingerprint, name=name, metadata=metadata or {})
    return directory, tensors


def test_loads_and_copies_every_tensor(tmp_path):
    directory, tensors = _saved_adapter(tmp_path)
    host = ToyHost()
    assert load_adapter_into(host, directory) == "en"
    assert host.calls == ["plan en", "install en"]
    assert torch.equal(host.adapters["en"][1].up.weight, tensors["layers.1.up.weight"])
    assert load_adapter_into(host, directory, name="de") == "de"  # the caller's name wins


def test_another_base_is_refused_before_planning_unless_forced(tmp_path):
    directory, _ = _saved_adapter(tmp_path, fingerprint="base-b")
    host = ToyHost()
    with pytest.raises(FingerprintMismatchError, match="trained on base base-b"):
        load_adapter_into(host, directory)
    assert host.calls == [] and host.adapters == {}
    assert load_adapter_into(host, directory, force=True) == "en"


def test_shape_mismatch_rolls_the_plan_back(tmp_path):
    directory, _ = _saved_adapter(tmp_path, layers=3)  # the host has 2 layers
    host = ToyHost()
    with pytest.raises(AdapterFormatError, match="unexpected .*layers.2"):
        load_adapter_into(host, directory)
    assert host.calls == ["plan en"] and host.adapters == {}  # planned, never installed, undone


def test_integer_tensors_are_refused(tmp_path):
    config = madx_task(HIDDEN)
    module = build_adapter(config)
    tensors = {f"layers.{i}.{n}": t.clone() for i in range(2) for n, t in module.state_dict().items()}
    tensors["layers.0.up.bias"] = tensors["layers.0.up.bias"].to(torch.int64)
    save_adapter(tmp_path / "en", tensors, config, "base-a", name="en")
    host = ToyHost()
    with pytest.raises(AdapterFormatError, match="layers.0.up.bias has dtype torch.int64"):
        load_adapter_into(host, tmp_path / "en")
    assert host.adapters == {}


def test_names_the_hosts_cannot_key_are_refused(tmp_path):
    from adapter_core.loading import check_adapter_name

    directory, _ = _saved_adapter(tmp_path)
    host = ToyHost()
    with pytest.raises(AdapterFormatError, match="'a.b' must be non-empty and contain no '.'"):
        load_adapter_into(host, directory, name="a.b")
    assert host.calls == []
    with pytest.raises(AdapterFormatError, match="'' must be non-empty"):
        check_adapter_name("", directory)


def test_a_host_may_leave_an_adapter_out(tmp_path):
    directory, _ = _saved_adapter(tmp_path, metadata={"skip": True})
    host = ToyHost()
    assert load_adapter_into(host, directory) is None
    assert host.calls == ["plan en"]


def test_fusion_directories_go_to_the_fusion_plan(tmp_path):
    save_fusion(tmp_path / "f", {"layers.0.value.weight": torch.eye(HIDDEN)}, FusionConfig(hidden_dim=HIDDEN),
                ["en", "de"], "base-a", "mix")
    host = ToyHost()
    with pytest.raises(AdapterFormatError, match="unexpected"):  # the toy's fusion plan expects no tensors
        load_adapter_into(host, tmp_path / "f")
    assert host.calls == ["fusion mix"]
