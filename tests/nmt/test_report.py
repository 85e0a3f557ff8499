"""nmt report: parsing fairseq-generate output, the copy baseline, zero-shot marks, and golden scores
against the sacrebleu command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nmt import report as nmt_report

SACREBLEU = str(Path(sys.executable).parent / "sacrebleu")
REFS = {"de": ["Das Haus ist groß .", "Der Baum wächst schnell", "Ich trinke Wasser .", "Die Sonne scheint heute"],
        "fr": ["La maison est grande .", "L'arbre pousse vite", "Je bois de l'eau .", "Le soleil brille aujourd'hui"],
        "en": ["The house is big .", "The tree grows fast", "I drink water .", "The sun shines today"]}


def generate_output(src: str, tgt: str, hyps: list[str], with_d: bool = True) -> str:
    """A fairseq-generate log: header noise, samples out of order, S/T/H/D/P lines."""
    lines = ["2026-01-01 | INFO | fairseq_cli.generate | loading model"]
    for i in reversed(range(len(hyps))):
        lines += [f"S-{i}\t__{src}__ {REFS[src][i]}", f"T-{i}\t{REFS[tgt][i]} <<unk>>",
                  f"H-{i}\t-0.51\t{hyps[i]} tokenised", f"P-{i}\t-0.1 -0.2"]
        if with_d:
            lines.append(f"D-{i}\t-0.51\t__{tgt}__ {hyps[i]}")
    lines.append("Generate test with beam=5: BLEU4 = 12.34")
    return "\n".join(lines) + "\n"


@pytest.fixture()
def runs(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for a, b in (("en", "de"), ("en", "fr"), ("de", "fr")):
        for lang in (a, b):
            (raw / f"test.{a}-{b}.{lang}").write_text("".join(x + "\n" for x in REFS[lang]))
    systems = {}
    for name, damage in (("base", 2), ("adapters", 1)):
        folder = tmp_path / name
        folder.mkdir()
        for src, tgt in (("en", "de"), ("en", "fr"), ("fr", "de")):
            hyps = [" ".join(ref.split()[:-damage]) or "x" for ref in REFS[tgt]]
            (folder / f"generate-{src}-{tgt}.txt").write_text(generate_output(src, tgt, hyps))
        systems[name] = folder
    return raw, systems


def cli_score(ref: str, hyp: str, *args: str, env: dict | None = None) -> float:
    done = subprocess.run([SACREBLEU, ref, "-i", hyp, "-b", "-w", "4", *args], capture_output=True, text=True, env=env,
                          check=True)
    return float(done.stdout.strip())


def test_report_matches_sacrebleu_cli(runs, tmp_path, capsys):
    raw, systems = runs
    out = tmp_path / "report"
    meta = tmp_path / "spec.json"
    meta.write_text(json.dumps({"meta": {"adapters": {"trainable_parameters": 1234}}}))
    code = nmt_report.main(["--system", f"base={systems['base']}", "--system", f"adapters={systems['adapters']}",
                            "--spec", str(meta), "--raw-dir", str(raw), "--supervised", "en-de,en-fr",
                            "--output-dir", str(out)])
    assert code == 0, capsys.readouterr().err
    data = json.loads((out / "nmt.json").read_text())
    assert set(data) == {"base", "adapters", "copy"}
    assert set(data["base"]) == {"en-de", "en-fr", "fr-de"}
    assert data["base"]["fr-de"]["zero_shot"] is True and data["base"]["en-de"]["zero_shot"] is False
    assert data["adapters"]["en-de"]["trainable_parameters"] == 1234
    assert data["adapters"]["en-de"]["bleu"] > data["base"]["en-de"]["bleu"]
    # D- lines (detokenised) were used, the language tag stripped, samples put back in id order
    hyp = Path(data["base"]["en-de"]["hyp"]).read_text().splitlines()
    assert hyp == [" ".join(r.split()[:-2]) for r in REFS["de"]]
    assert Path(data["copy"]["fr-de"]["hyp"]).read_text().splitlines() == REFS["fr"]
    for system in data:
        for direction, entry in data[system].items():
            assert entry["bleu"] == pytest.approx(cli_score(entry["ref"], entry["hyp"]), abs=1e-4)
            assert entry["chrf"] == pytest.approx(cli_score(entry["ref"], entry["hyp"], "-m", "chrf",
                                                            "--chrf-word-order", "2"), abs=1e-4)
            assert entry["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
            assert "nw:2" in entry["chrf_signature"]
    table = (out / "nmt.md").read_text()
    assert "| direction | base | adapters | copy |" in table and "| fr-de (zero-shot) |" in table
    assert "tok:13a" in table
    assert (out / "bleu_heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spbleu_with_local_model_matches_cli_flores200(runs, tmp_path):
    """Our spBLEU with a local model equals `sacrebleu -tok flores200` when sacrebleu finds that model."""
    import sentencepiece as spm

    raw, systems = runs
    text = tmp_path / "spm.txt"
    text.write_text("".join(x + "\n" for lang in REFS.values() for x in lang) * 3)
    sacrebleu_home = tmp_path / "sacrebleu_home"
    (sacrebleu_home / "models").mkdir(parents=True)
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(tmp_path / "flores"), vocab_size=60,
                                   minloglevel=2, hard_vocab_limit=False)
    model = tmp_path / "flores.model"
    (sacrebleu_home / "models" / "flores200sacrebleuspm").write_bytes(model.read_bytes())
    out = tmp_path / "report"
    result = nmt_report.build_report({"base": {"en-de": systems["base"] / "generate-en-de.txt"}}, out, raw,
                                     spm_model=model)
    entry = result["base"]["en-de"]
    env = dict(os.environ, SACREBLEU=str(sacrebleu_home))
    assert entry["spbleu"] == pytest.approx(cli_score(entry["ref"], entry["hyp"], "-tok", "flores200", env=env),
                                            abs=1e-4)
    assert "tok:spm-flores.model@" in entry["spbleu_signature"]


def test_report_without_raw_dir_uses_t_lines_and_h_fallback(tmp_path):
    folder = tmp_path / "sys"
    folder.mkdir()
    (folder / "generate-en-de.txt").write_text(generate_output("en", "de", REFS["de"][:2], with_d=False))
    result = nmt_report.build_report({"s": {"en-de": folder / "generate-en-de.txt"}}, tmp_path / "r")
    assert Path(result["s"]["en-de"]["hyp"]).read_text().splitlines() == [r + " tokenised" for r in REFS["de"][:2]]
    assert Path(result["s"]["en-de"]["ref"]).read_text().splitlines()[0] == REFS["de"][0] + " <<unk>>"
    assert result["s"]["en-de"]["zero_shot"] is None


def test_report_errors(tmp_path, runs, capsys):
    raw, systems = runs
    empty = tmp_path / "empty"
    empty.mkdir()
    assert nmt_report.main(["--system", f"x={empty}", "--output-dir", str(tmp_path / "o")]) == 2
    assert "no generate-<src>-<tgt>.txt files in" in capsys.readouterr().err
    noise = tmp_path / "noise" / "generate-en-de.txt"
    noise.parent.mkdir()
    noise.write_text("just a log line\n")
    assert nmt_report.main(["--system", f"x={noise.parent}", "--output-dir", str(tmp_path / "o")]) == 2
    assert "no H-/D- lines" in capsys.readouterr().err
    (raw / "test.en-de.de").write_text("one line\n")
    assert nmt_report.main(["--system", f"base={systems['base']}", "--raw-dir", str(raw),
                            "--output-dir", str(tmp_path / "o")]) == 2
    assert "test.en-de.en has 4 lines but" in capsys.readouterr().err  # source and reference sides differ
    (raw / "test.en-de.en").write_text("one line\n")
    assert nmt_report.main(["--system", f"base={systems['base']}", "--raw-dir", str(raw),
                            "--output-dir", str(tmp_path / "o")]) == 2
    assert "sample id 3 but" in capsys.readouterr().err
    assert not (tmp_path / "o" / "nmt.json").exists()


def test_last_reference_without_final_newline_is_scored(tmp_path, runs):
    raw, systems = runs
    for lang in ("en", "de"):  # the files lose their final newline: still 4 segments
        path = raw / f"test.en-de.{lang}"
        path.write_text(path.read_text().rstrip("\n"))
    result = nmt_report.build_report({"base": {"en-de": systems["base"] / "generate-en-de.txt"}}, tmp_path / "r",
                                     raw_dir=raw)
    assert result["base"]["en-de"]["missing_hypotheses"] == 0
    assert Path(result["base"]["en-de"]["ref"]).read_text().splitlines() == REFS["de"]
    assert Path(result["copy"]["en-de"]["hyp"]).read_text().splitlines() == REFS["en"]


def test_spec_meta_cannot_overwrite_a_computed_score(tmp_path, runs, capsys):
    raw, systems = runs
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"systems": {"base": str(systems["base"])}, "meta": {"base": {"bleu": 99.0}}}))
    assert nmt_report.main(["--spec", str(spec), "--raw-dir", str(raw), "--output-dir", str(tmp_path / "o")]) == 2
    assert "meta of system base sets bleu, which the report computes" in capsys.readouterr().err
