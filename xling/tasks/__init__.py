"""The MAD-X downstream tasks: NER, extractive QA, commonsense multiple choice, sentence classification, POS tagging.

Each module exposes ``MODEL_CLASS`` (an ``AutoModelFor...``), ``read(source, labels_path)``
(a file or a ``HubDatasetRef``, read into a ``datasets.Dataset`` by ``xling.datasets_io``),
``build_features(examples, tokenizer, labels, max_length)`` for training (a ``Dataset`` of
features, tokenised with ``Dataset.map``), a collator, and
``evaluate(model, tokenizer, examples, labels, lang, batch_size)``.
"""

from . import classification, commonsense, ner, pos, qa

TASKS = {"ner": ner, "qa": qa, "copa": commonsense, "classification": classification, "pos": pos}
#: Tasks whose head has one output per label of the training data (``num_labels`` is set from them).
LABELLED_HEAD_TASKS = ("ner", "classification", "pos")
