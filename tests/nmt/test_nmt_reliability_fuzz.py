"""hypothesis fuzzing of the adapter loader (``nmt.adapter_files.load_adapter_dirs``, behind --adapter-dirs).

Whatever the bytes in ``adapter_config.json`` and ``adapter_model.safetensors``,
loading either succeeds or raises one of our own clear errors
(``AdapterFormatError``, ``FingerprintMismatchError``) naming the directory, and
a failed load leaves the model unchanged.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter_core import AdapterFormatError, FingerprintMismatchError

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
    """Write the two files, load them; check the outcome."""
    from nmt.adapter_files import load_adapter_dirs

    before = {k: v.clone() for k, v in model.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "en-de"
        directory.mkdir()
        (directory / "adapter_config.json").write_bytes(config_bytes)
        (directory / "adapter_model.safetensors").write_bytes(weights)
        try:
            load_adapter_dirs(model, [directory], force=force)
        except CLEAR_ERRORS as err:
            assert str(directory) in str(err)
            after = model.state_dict()
            assert after.keys() == before.keys() and all(torch.equal(before[k], after[k]) for k in before)


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
