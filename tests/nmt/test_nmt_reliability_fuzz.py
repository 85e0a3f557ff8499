"""hypothesis fuzzing of the adapter loader (``nmt.adapter_files.load_adapter_dirs``, behind --adapter-dirs).

Whatever the bytes in ``adapter_config.json`` and ``adapter_model.safetensors``,
loading either raises one of our own clear errors (``AdapterFormatError``,
``FingerprintMismatchError``) naming the directory and leaves the model
unchanged, or succeeds and round-trips: the model then holds exactly the saved
tensors and config, in the layers the metadata lists, and nothing else changed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as load_safetensors

from adapter_core import AdapterConfig, AdapterFormatError, FingerprintMismatchError

from nmt_helpers import load

CLEAR_ERRORS = (AdapterFormatError, FingerprintMismatchError)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def host(nmt_run, tmp_path_factory):
    """The session's pair model, and one valid exported adapter (its two files' contents)."""
    from nmt.adapter_files import export_adapters

    _, model, _ = load(nmt_run.data, nmt_run.pair)
    out = tmp_path_factory.mktemp("valid")
    export_adapters(model, out, ["en-de"])
    config = json.loads((out / "en-de" / "adapter_config.json").read_text())
    weights = (out / "en-de" / "adapter_model.safetensors").read_bytes()
    return model, config, weights


def _load(model, config_bytes: bytes, weights: bytes, force: bool) -> None:
    """Write the two files, load them; check the outcome: a clear error naming the directory and an
    unchanged model, or exactly what the files hold (see ``_check_loaded``)."""
    from nmt.adapter_files import load_adapter_dirs

    before = {k: v.clone() for k, v in model.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "en-de"
        directory.mkdir()
        (directory / "adapter_config.json").write_bytes(config_bytes)
        (directory / "adapter_model.safetensors").write_bytes(weights)
        try:
            keys = load_adapter_dirs(model, [directory], force=force)
        except CLEAR_ERRORS as err:
            assert str(directory) in str(err)
            after = model.state_dict()
            assert after.keys() == before.keys() and all(torch.equal(before[k], after[k]) for k in before)
        else:
            _check_loaded(model, before, keys, config_bytes, weights)


def _check_loaded(model, before: dict, keys: list[str], config_bytes: bytes, weights: bytes) -> None:
    """A load that succeeded round-trips: the adapter named by the file (or its folder) now holds, in exactly
    the layers its metadata lists, the saved tensors and the saved config; nothing else in the model changed."""
    from nmt.adapter_files import SIDES

    document = json.loads(config_bytes)
    key = str(document.get("name", "")) or "en-de"
    assert keys == [key]
    config = AdapterConfig.from_dict(document["config"])
    saved = load_safetensors(weights)
    metadata = document.get("metadata") or {}
    listed = {f"{side}.layers.{i}." for side in SIDES for i in metadata.get(f"{side}_layers", [])}
    assert {".".join(name.split(".")[:3]) + "." for name in saved} == listed
    modules = {f"{side}.layers.{i}.": bank.adapters[key] for side in SIDES for i, bank in model.adapter_banks(side)
               if key in bank.adapters}
    for prefix in listed:
        assert modules[prefix].config == config
        state = modules[prefix].state_dict()
        mine = {name[len(prefix):]: tensor for name, tensor in saved.items() if name.startswith(prefix)}
        assert mine.keys() == state.keys()
        assert all(torch.equal(state[name], tensor.to(state[name].dtype)) for name, tensor in mine.items())
    after = model.state_dict()
    loaded = [k for k in before if f".adapters.{key}." in k and any(k.startswith(p) for p in listed)]
    assert all(k in after and torch.equal(before[k], after[k]) for k in before.keys() - set(loaded))


@FUZZ
@given(data=st.binary(max_size=400), force=st.booleans())
def test_random_weight_bytes(host, data, force):
    model, config, _ = host
    _load(model, json.dumps(config).encode(), data, force)


@FUZZ
@given(cut=st.integers(0, 10_000), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
def test_truncated_or_flipped_weights(host, cut, flips):
    model, config, weights = host
    damaged = bytearray(weights[: cut % (len(weights) + 1)] if cut % 3 else weights)
    for position, value in flips:
        if damaged:
            damaged[position % len(damaged)] = value
    _load(model, json.dumps(config).encode(), bytes(damaged), force=True)


@FUZZ
@given(document=json_values, raw=st.binary(max_size=200), use_raw=st.booleans())
def test_random_config_json_or_bytes(host, document, raw, use_raw):
    model, _, weights = host
    _load(model, raw if use_raw else json.dumps(document).encode(), weights, force=True)


@FUZZ
@given(path=st.sampled_from([("name",), ("base_fingerprint",), ("metadata",), ("config",),
                             ("metadata", "encoder_layers"), ("metadata", "decoder_layers"),
                             ("config", "hidden_dim"), ("config", "bottleneck_dim"), ("config", "kind"),
                             ("config", "reduction_factor"), ("config", "init"), ("config", "input_layer_norm"),
                             ("config", "phm_dim"), ("config", "activation")]),
       value=json_values | st.integers(-3, 40) | st.sampled_from(["compacter", "nice", "glow", "en.de", ""]),
       force=st.booleans())
def test_one_field_of_a_valid_config_changed(host, path, value, force):
    model, config, weights = host
    document = json.loads(json.dumps(config))
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    _load(model, json.dumps(document).encode(), weights, force)
