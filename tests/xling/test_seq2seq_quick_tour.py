"""The README quick tour for translation models: language adapters on an NLLB-style model, run as written.

The block is ``QUICK_TOUR`` below; once README.md carries it after ``<!-- readme-api: seq2seq-quick-tour -->``
the test also checks that the two are the same text, so the README cannot drift from what runs here.
"""

from __future__ import annotations

import re
from pathlib import Path

from seq2seq_models import save_tiny_nllb

QUICK_TOUR = '''\
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
from xling.seq2seq import Seq2SeqAdapterHost
from xling.seq2seq_translate import translate

model = AutoModelForSeq2SeqLM.from_pretrained(NLLB)    # a local NLLB-200 (or M2M-100, mBART-50, Marian) directory
tokenizer = AutoTokenizer.from_pretrained(NLLB)
host = Seq2SeqAdapterHost(model, route_by="lang")       # source language's adapter in the encoder, target's in the decoder
for lang in ("eng_Latn", "deu_Latn", "swh_Latn"):
    host.add_adapter(lang)                              # Bapna & Firat's module; or host.load_adapter(directory)
print(translate(host, tokenizer, ["Hello!", "Guten Tag!"], ["eng_Latn", "deu_Latn"], ["swh_Latn", "eng_Latn"]))
host.save_adapter("adapters/swh_Latn", "swh_Latn")      # the fairseq plugin loads it too
'''


def test_quick_tour_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"NLLB": str(save_tiny_nllb(tmp_path / "nllb"))}
    exec(compile(QUICK_TOUR, "quick-tour", "exec"), namespace)
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed.startswith("[") and printed.count("'") >= 4  # a list of two translations
    assert (tmp_path / "adapters" / "swh_Latn" / "adapter_model.safetensors").is_file()
    assert sorted(namespace["host"].adapters) == ["deu_Latn", "eng_Latn", "swh_Latn"]


def test_readme_block_is_the_tested_one():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- readme-api: seq2seq-quick-tour -->\s*```python\n(.*?)```", readme, re.DOTALL)
    if match:  # the README shows the block: it must be this one
        assert match.group(1) == QUICK_TOUR
    else:
        assert "seq2seq-quick-tour" not in readme, "README names the block but has no python block after the marker"
