"""The MAD-X downstream tasks: NER, extractive QA, commonsense multiple choice.

Each module exposes ``MODEL_CLASS`` (an ``AutoModelFor...``), ``read(path, args)``,
``build_features(examples, tokenizer, labels, max_length)`` for training, a
collator, and ``evaluate(model, tokenizer, examples, labels, lang, batch_size)``.
"""

from . import commonsense, ner, qa

TASKS = {"ner": ner, "qa": qa, "copa": commonsense}
