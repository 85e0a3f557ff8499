"""Published checkpoint formats (issue 15, item 4): M2M-100 418M / 1.2B and mBART-50 through the plugin.

Each case builds fairseq's own model (random weights) with the configuration its published
checkpoint was trained with, scaled down (2+2 layers, d = 16) but with every flag that decides the
state-dict keys or the computation kept: pre-norm with the final LayerNorms, LayerNorm on the
embeddings, shared embeddings, learned or sinusoidal positions, embedding scaling, activation.
It saves the model as fairseq does, next to dictionary files in the release's format, and then
runs what a user holding the real files runs: ``fairseq-train`` with our plugin and
``--finetune-from-model`` (a strict load), a few adapter updates, and generation of every test
sentence.  The real 418M/1.2B/mBART-50 weights are not used (not available offline).

Where the configurations come from:

* M2M-100 (Fan et al. 2021): fairseq ``examples/m2m_100/README.md`` (task
  ``translation_multi_simple_epoch``, ``--encoder-langtok src --decoder-langtok``,
  ``--fixed-dictionary model_dict.128k.txt``, data binarised with ``data_dict.128k.txt``), and
  Hugging Face's ``M2M100Config`` defaults = ``facebook/m2m100_418M`` (d_model 1024, FFN 4096,
  12+12 layers, 16 heads, layerdrop 0.05, relu, scale_embedding, sinusoidal positions, a final
  LayerNorm on each side, none on the embeddings; 1.2B: FFN 8192 and 24+24 layers, the figures of
  ``facebook/m2m100_1.2B`` that nmt/models/architectures.py already declared).  Hugging Face's
  ``convert_m2m100_original_checkpoint_to_pytorch.py`` reads ``m2m_100["args"]`` first, so the
  2020 checkpoints carry an argparse ``Namespace`` (``args``), which fairseq upgrades to ``cfg``
  on load: that is the format written here.  Vocabulary: 128,112 rows (``M2M100Config.vocab_size``) =
  4 specials, the data dictionary, the 100 ``__xx__`` language tokens, then 8 ``madeupwordNNNN``
  (the id order of ``M2M100Tokenizer``, ``num_madeup_words=8``; the real file was not read).
* mBART-50 fine-tuned (Tang et al. 2020): fairseq ``examples/multilingual/README.md`` (pre-norm,
  ``--layernorm-embedding``, ``--encoder-langtok src --decoder-langtok``, ``ML50_langs.txt``),
  the ``mbart_large`` shapes (learned positions, 1024 of them, scaled embeddings), ReLU for the
  fine-tuned many-to-many/one-to-many/many-to-one models (Hugging Face's
  ``convert_mbart_original_checkpoint_to_pytorch.py --mbart_50 --finetuned``), ``[en_XX]``
  language tokens and ``<mask>`` (``--lang-tok-style mbart``: 250,054 rows in Hugging Face's
  ``mbart-large-50`` models).  Written in fairseq's current format (``cfg``, as ``Trainer.state_dict``).
"""

from __future__ import annotations

import dataclasses
from argparse import Namespace
from pathlib import Path

import pytest
import torch

import nmt.safe_loading  # noqa: F401  (torch.load(weights_only=True) of fairseq checkpoints, as the plugin allows)
from nmt_corpus import render, sentences
from nmt_helpers import TRAIN_FLAGS, USER_DIR, run_train

# The 100 M2M-100 languages (Hugging Face FAIRSEQ_LANGUAGE_CODES["m2m100"], the order of model_dict.128k.txt).
M2M100_LANGS = (
    "af am ar ast az ba be bg bn br bs ca ceb cs cy da de el en es et fa ff fi fr fy ga gd gl gu ha he hi hr ht hu "
    "hy id ig ilo is it ja jv ka kk km kn ko lb lg ln lo lt lv mg mk ml mn mr ms my ne nl no ns oc or pa pl ps pt "
    "ro ru sd si sk sl so sq sr ss su sv sw ta th tl tn tr uk ur uz vi wo xh yi yo zh zu").split()
# fairseq examples/multilingual/ML50_langs.txt, in the file's order (the order of mBART-50's language tokens).
ML50_LANGS = (
    "ar_AR cs_CZ de_DE en_XX es_XX et_EE fi_FI fr_XX gu_IN hi_IN it_IT ja_XX kk_KZ ko_KR lt_LT lv_LV my_MM ne_NP "
    "nl_XX ro_RO ru_RU si_LK tr_TR vi_VN zh_CN af_ZA az_AZ bn_IN fa_IR he_IL hr_HR id_ID ka_GE km_KH mk_MK ml_IN "
    "mn_MN mr_IN pl_PL ps_AF pt_XX sv_SE sw_KE ta_IN te_IN th_TH tl_XX uk_UA ur_PK xh_ZA gl_ES sl_SI").split()
# Tiny model, same structure: what every case overrides in both the stock and our configuration.
SCALE = ["--encoder-embed-dim", "16", "--decoder-embed-dim", "16", "--encoder-attention-heads", "2",
         "--decoder-attention-heads", "2", "--encoder-layers", "2", "--decoder-layers", "2"]
M2M_STOCK = ["--arch", "transformer_wmt_en_de_big", "--encoder-layers", "12", "--decoder-layers", "12",
             "--encoder-normalize-before", "--decoder-normalize-before", "--share-all-embeddings",
             "--encoder-layerdrop", "0.05", "--decoder-layerdrop", "0.05"]
# Training-only settings the adapter architectures leave at fairseq's defaults: LayerDrop would skip the
# layers that carry the adapters (adapter training sets its own dropout on the command line).
TRAINING_ONLY = {"encoder.layerdrop", "decoder.layerdrop"}


@dataclasses.dataclass(frozen=True)
class PublishedModel:
    """A published fairseq checkpoint: how it was configured, and how ours must be called to load it."""

    # Our architecture (nmt/models/architectures.py).
    arch: str
    # fairseq's own flags that built the published model (model part; see the module docstring for sources).
    stock_flags: list
    # The full-size figures (fields of fairseq's TransformerConfig), from the published configurations.
    figures: dict
    # The feed-forward width of the scaled-down model (4 x d for 418M and mBART-50, 8 x d for 1.2B, as published).
    scaled_ffn: int
    # "m2m" (fixed model dictionary with __xx__ tokens, language pairs file) or "mbart" ([xx_XX], ML50 list).
    family: str
    # The three languages of the tiny corpus, standing for en, de, fr.
    langs: tuple
    # Checkpoint layout: "args" (an argparse Namespace, fairseq before its dataclass configs) or "cfg" (today's).
    layout: str


M2M_FIGURES = {"encoder.embed_dim": 1024, "decoder.embed_dim": 1024, "encoder.attention_heads": 16,
               "encoder.normalize_before": True, "decoder.normalize_before": True, "encoder.learned_pos": False,
               "decoder.learned_pos": False, "layernorm_embedding": False, "no_scale_embedding": False,
               "share_all_embeddings": True, "activation_fn": "relu", "no_decoder_final_norm": False}
CASES = {
    "m2m100_418m": PublishedModel(
        "adapter_m2m100_418m", M2M_STOCK,
        {**M2M_FIGURES, "encoder.ffn_embed_dim": 4096, "encoder.layers": 12, "decoder.layers": 12},
        64, "m2m", ("en", "de", "fr"), "args"),
    "m2m100_1_2b": PublishedModel(
        "adapter_m2m100_1_2b",
        M2M_STOCK + ["--encoder-ffn-embed-dim", "8192", "--decoder-ffn-embed-dim", "8192", "--encoder-layers", "24",
                     "--decoder-layers", "24"],
        {**M2M_FIGURES, "encoder.ffn_embed_dim": 8192, "encoder.layers": 24, "decoder.layers": 24},
        128, "m2m", ("en", "de", "fr"), "args"),
    "mbart50": PublishedModel(
        "adapter_mbart50",
        ["--arch", "mbart_large", "--encoder-normalize-before", "--decoder-normalize-before", "--layernorm-embedding",
         "--activation-fn", "relu"],
        {"encoder.embed_dim": 1024, "encoder.ffn_embed_dim": 4096, "encoder.layers": 12, "decoder.layers": 12,
         "encoder.attention_heads": 16, "encoder.normalize_before": True, "decoder.normalize_before": True,
         "encoder.learned_pos": True, "decoder.learned_pos": True, "max_source_positions": 1024,
         "layernorm_embedding": True, "no_scale_embedding": False, "share_all_embeddings": True,
         "activation_fn": "relu"},
        64, "mbart", ("en_XX", "de_DE", "fr_XX"), "cfg"),
}
TEST_SENTENCES = 7  # not a multiple of 8: fairseq-generate's default batching would leave some out


def train_args(argv: list[str]) -> Namespace:
    from fairseq import options

    return options.parse_args_and_arch(options.get_training_parser(), argv)


def flat_config(args: Namespace) -> dict:
    """fairseq's TransformerConfig of ``args``, flattened to {"encoder.layers": 12, ...}."""
    from fairseq.models.transformer import TransformerConfig

    def flatten(node, prefix=""):
        out = {}
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            out.update(flatten(value, f"{field.name}.") if dataclasses.is_dataclass(value)
                       else {prefix + field.name: value})
        return out

    return flatten(TransformerConfig.from_namespace(args))


@pytest.mark.parametrize("name", sorted(CASES))
def test_architecture_is_the_published_configuration(name, tmp_path):
    """At full size, our architecture is field by field fairseq's configuration of the published model."""
    case = CASES[name]
    pairs = f"{case.langs[0]}-{case.langs[1]}"
    stock = flat_config(train_args([str(tmp_path), "--task", "translation_multi_simple_epoch", "--lang-pairs", pairs,
                                    *case.stock_flags]))
    ours = flat_config(train_args([str(tmp_path), "--user-dir", USER_DIR, "--task", "adapter_translation",
                                   "--lang-pairs", pairs, "--arch", case.arch]))
    assert {k for k in stock if stock[k] != ours[k]} <= TRAINING_ONLY
    assert {k: ours[k] for k in case.figures} == case.figures


# -- the release's files, in miniature -----------------------------------------------------------
def write_release(case: PublishedModel, root: Path) -> dict:
    """Dictionaries, language lists and a tiny parallel corpus, binarised as the release's README says."""
    from fairseq import options
    from fairseq_cli import preprocess

    words = [render(lang, [c]) for lang in ("en", "de", "fr") for c in range(12)]
    data_dict = root / ("data_dict.128k.txt" if case.family == "m2m" else "dict.txt")
    data_dict.write_text("".join(f"{w} {1000 - i}\n" for i, w in enumerate(words)), encoding="utf-8")
    files = {"data_dict": data_dict}
    if case.family == "m2m":
        # model_dict.128k.txt: the data dictionary, then the 100 language tokens, then 8 madeup words.
        files["model_dict"] = root / "model_dict.128k.txt"
        files["model_dict"].write_text(data_dict.read_text(encoding="utf-8")
                                       + "".join(f"__{lang}__ 1\n" for lang in M2M100_LANGS)
                                       + "".join(f"madeupword{i:04d} 0\n" for i in range(8)), encoding="utf-8")
        # language_pairs_small_models.txt: one line, comma-separated (fairseq reads it as --lang-pairs FILE).
        files["language_pairs"] = root / "language_pairs_small_models.txt"
        files["language_pairs"].write_text(",".join(f"{a}-{b}" for a in case.langs for b in case.langs if a != b)
                                           + "\n", encoding="utf-8")
    else:
        files["lang_list"] = root / "ML50_langs.txt"
        files["lang_list"].write_text("\n".join(ML50_LANGS) + "\n", encoding="utf-8")
    raw, data = root / "raw", root / "data-bin"
    raw.mkdir()
    plain = dict(zip(case.langs, ("en", "de", "fr")))
    for p, (src, tgt) in enumerate([(case.langs[0], case.langs[1]), (case.langs[1], case.langs[0])]):
        for s, (split, count) in enumerate({"train": 80, "valid": 8, "test": TEST_SENTENCES}.items()):
            rows = sentences(count, seed=10 * p + s)
            for lang in (src, tgt):
                (raw / f"{split}.{src}-{tgt}.{lang}").write_text(
                    "".join(render(plain[lang], r) + "\n" for r in rows), encoding="utf-8")
        preprocess.main(options.get_preprocessing_parser().parse_args([
            "--source-lang", src, "--target-lang", tgt, "--destdir", str(data), "--workers", "1",
            "--thresholdsrc", "0", "--thresholdtgt", "0", "--srcdict", str(data_dict), "--tgtdict", str(data_dict),
            *[arg for split in ("train", "valid", "test")
              for arg in (f"--{split}pref", str(raw / f"{split}.{src}-{tgt}"))]]))
    files["data"] = data
    return files


def language_flags(case: PublishedModel, files: dict, training: bool) -> list[str]:
    """The language flags of the release's commands (and ours): tokens, dictionary, language list."""
    pairs = f"{case.langs[0]}-{case.langs[1]},{case.langs[1]}-{case.langs[0]}"
    if case.family == "m2m":
        flags = ["--fixed-dictionary", str(files["model_dict"]), "--encoder-langtok", "src", "--decoder-langtok"]
        if training:  # the languages are the __xx__ tokens of the model dictionary, in its order
            return flags + ["--lang-pairs", pairs, "--langs", ",".join(M2M100_LANGS)]
        return flags + ["--lang-pairs", str(files["language_pairs"])]  # fairseq reads the file's contents
    return ["--lang-dict", str(files["lang_list"]), "--lang-tok-style", "mbart", "--encoder-langtok", "src",
            "--decoder-langtok", "--lang-pairs", pairs]


def stock_flags(case: PublishedModel) -> list[str]:
    return [*case.stock_flags, *SCALE, "--encoder-ffn-embed-dim", str(case.scaled_ffn),
            "--decoder-ffn-embed-dim", str(case.scaled_ffn)]


def save_stock_checkpoint(case: PublishedModel, files: dict, path: Path):
    """fairseq's own task and model, saved with the top-level layout fairseq writes; returns (task, model)."""
    from fairseq import checkpoint_utils, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from omegaconf import OmegaConf

    args = train_args([str(files["data"]), "--task", "translation_multi_simple_epoch",
                       *language_flags(case, files, training=True), *stock_flags(case)])
    task = tasks.setup_task(args)
    model = task.build_model(args)
    history = [{"criterion_name": "LabelSmoothedCrossEntropyCriterion", "optimizer_name": "FairseqAdam",
                "lr_scheduler_state": {"best": 2.5}, "num_updates": 500000}]
    extra = {"train_iterator": {"epoch": 9, "iterations_in_epoch": 0}, "val_loss": 2.5, "best": 2.5}
    if case.layout == "args":  # fairseq's checkpoint_utils.save_state, before its dataclass configs
        state = {"args": args, "model": model.state_dict(), "optimizer_history": history, "extra_state": extra}
    else:  # fairseq's Trainer.state_dict today
        cfg = OmegaConf.to_container(convert_namespace_to_omegaconf(args), resolve=True, enum_to_str=True)
        state = {"args": None, "cfg": cfg, "model": model.state_dict(), "criterion": None,
                 "optimizer_history": history, "task_state": {}, "extra_state": extra}
    checkpoint_utils.torch_persistent_save(state, str(path))
    return task, model.eval()


def our_argv(case: PublishedModel, files: dict, base: Path, save_dir: Path, *extra: str) -> list[str]:
    """fairseq-train with our plugin on the published checkpoint: our architecture, the same scale flags."""
    return [str(files["data"]), "--user-dir", USER_DIR, "--task", "adapter_translation",
            *language_flags(case, files, training=True), "--arch", case.arch, *SCALE,
            "--encoder-ffn-embed-dim", str(case.scaled_ffn), "--decoder-ffn-embed-dim", str(case.scaled_ffn),
            "--adapter-dim", "4", "--finetune-from-model", str(base), *TRAIN_FLAGS, "--lr", "0.02",
            "--max-update", "3", "--disable-validation", "--save-dir", str(save_dir), *extra]


def tokens(task, lang: str, text: str) -> torch.Tensor:
    """One source sentence as the task encodes it: source-language token, words, </s>."""
    from fairseq.data.multilingual.multilingual_utils import get_lang_tok

    dictionary = task.source_dictionary
    langtok = dictionary.index(get_lang_tok(lang, task.args.lang_tok_style))
    assert langtok != dictionary.unk()
    return torch.cat([torch.tensor([langtok]), dictionary.encode_line(text, add_if_not_exist=False).long()])


def assert_starts_as_the_stock_model(case, files, base, stock_task, stock_model, tmp_path):
    """Loaded strictly, with adapters at their identity start, our model computes the stock model's scores."""
    from fairseq import checkpoint_utils, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    from nmt.routing import AdapterRoute

    args = train_args(our_argv(case, files, base, tmp_path / "unused"))
    task = tasks.setup_task(args)
    model = task.build_model(args).eval()
    state = checkpoint_utils.load_checkpoint_to_cpu(str(base))
    model.load_state_dict(state["model"], strict=True, model_cfg=convert_namespace_to_omegaconf(args).model)
    src, tgt = case.langs[0], case.langs[1]
    rows = [tokens(task, src, render("en", [c, (c + 5) % 12, (c + 7) % 12])) for c in range(4)]
    assert [tokens(stock_task, src, render("en", [c, (c + 5) % 12, (c + 7) % 12])).tolist() for c in range(4)] \
        == [r.tolist() for r in rows]
    batch, lengths = torch.stack(rows), torch.tensor([len(r) for r in rows])
    keys = [f"{src}-{tgt}"] * len(rows)
    with torch.no_grad():
        ours = model(batch, lengths, batch, adapter_route=AdapterRoute.from_keys(keys, keys))[0]
    with torch.no_grad():
        theirs = stock_model(batch, lengths, batch)[0]
    assert torch.equal(ours, theirs)


def generated_tokens(path: Path) -> dict[int, int]:
    """Sentence id -> number of tokens generated (fairseq-generate's P- line: one score per token and </s>).

    The H- line's text is not counted: a random model may well produce tokens that print as nothing.
    """
    return {int(line.split("\t")[0][2:]): len(line.split("\t")[1].split())
            for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("P-")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_published_format_loads_strictly_trains_adapters_and_translates(name, tmp_path):
    from nmt.cli import export_adapters_main
    from nmt.generate_many import main as generate_many

    case = CASES[name]
    files = write_release(case, tmp_path)
    base = tmp_path / "published.pt"
    stock_task, stock_model = save_stock_checkpoint(case, files, base)
    saved = torch.load(base, weights_only=True)  # also: the safe loader accepts the release's layout
    assert ("args" in saved and saved["args"] is not None) == (case.layout == "args")
    if case.family == "m2m":  # the embedding has a row per model-dictionary line (+4 specials), nothing added
        rows = 4 + len(files["model_dict"].read_text(encoding="utf-8").splitlines())
    else:  # the data dictionary, then [xx_XX] for every ML50 language, then <mask> (--lang-tok-style mbart)
        rows = 4 + len(files["data_dict"].read_text(encoding="utf-8").splitlines()) + len(ML50_LANGS) + 1
        assert stock_task.source_dictionary[rows - 1] == "<mask>"
        assert stock_task.source_dictionary.index("[en_XX]") == rows - 1 - len(ML50_LANGS) + ML50_LANGS.index("en_XX")
    assert saved["model"]["encoder.embed_tokens.weight"].shape[0] == rows
    assert_starts_as_the_stock_model(case, files, base, stock_task, stock_model, tmp_path)

    run_train(our_argv(case, files, base, tmp_path / "adapters"))
    trained = torch.load(tmp_path / "adapters" / "checkpoint_last.pt", weights_only=True)["model"]
    adapter_keys = {k for k in trained if ".adapter_bank." in k}
    assert set(trained) - adapter_keys == set(saved["model"])  # every base key, nothing renamed or added
    for key, tensor in saved["model"].items():
        assert torch.equal(trained[key], tensor), key  # the base stays frozen
    ups = [k for k in adapter_keys if k.endswith("up.weight")]
    assert len(ups) == 2 * 4 and all(trained[k].abs().sum() > 0 for k in ups)  # 2 pairs x 4 layers, trained

    directions = [f"{case.langs[0]}-{case.langs[1]}", f"{case.langs[1]}-{case.langs[0]}"]
    generate_flags = ["--user-dir", USER_DIR, "--task", "adapter_translation", *language_flags(case, files, False),
                      "--beam", "2", "--max-len-b", "4", "--min-len", "1", "--cpu", "--num-workers", "0"]
    assert generate_many([str(files["data"]), "--path", str(tmp_path / "adapters" / "checkpoint_last.pt"),
                          "--directions", ",".join(directions), "--output-dir", str(tmp_path / "gen"), "--",
                          *generate_flags]) == 0
    for direction in directions:
        produced = generated_tokens(tmp_path / "gen" / f"generate-{direction}.txt")
        assert sorted(produced) == list(range(TEST_SENTENCES)), direction  # every test sentence translated
        assert min(produced.values()) >= 2, direction  # --min-len 1: at least one token before </s>

    # The exported adapters on the published checkpoint itself (--adapter-dirs) translate exactly the same.
    assert export_adapters_main([str(tmp_path / "adapters" / "checkpoint_last.pt"), "--output-dir", str(tmp_path / "exported")]) == 0
    dirs = ",".join(str(tmp_path / "exported" / d) for d in directions)
    assert generate_many([str(files["data"]), "--path", str(base), "--directions", ",".join(directions),
                          "--output-dir", str(tmp_path / "swapped"), "--", *generate_flags,
                          "--adapter-dirs", dirs]) == 0
    for direction in directions:
        assert (tmp_path / "swapped" / f"generate-{direction}.txt").read_text(encoding="utf-8") \
            == (tmp_path / "gen" / f"generate-{direction}.txt").read_text(encoding="utf-8"), direction


def test_checkpoint_missing_a_base_tensor_is_refused(tmp_path):
    """The load is strict: a published checkpoint without one base tensor stops fairseq-train."""
    case = CASES["m2m100_418m"]
    files = write_release(case, tmp_path)
    base = tmp_path / "published.pt"
    save_stock_checkpoint(case, files, base)
    state = torch.load(base, weights_only=True)
    del state["model"]["encoder.layer_norm.weight"]  # the final LayerNorm of a pre-norm encoder
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(Exception, match="Cannot load model parameters") as refused:
        run_train(our_argv(case, files, tmp_path / "broken.pt", tmp_path / "adapters"))
    assert 'Missing key(s) in state_dict: "encoder.layer_norm.weight"' in str(refused.value.__context__)
    # and a checkpoint of another architecture: mBART-50's embedding LayerNorm is unexpected in M2M-100
    state = torch.load(base, weights_only=True)
    state["model"]["encoder.layernorm_embedding.weight"] = torch.ones(16)
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(Exception, match="Cannot load model parameters") as refused:
        run_train(our_argv(case, files, tmp_path / "other.pt", tmp_path / "adapters2"))
    assert 'Unexpected key(s) in state_dict: "encoder.layernorm_embedding.weight"' in str(refused.value.__context__)


def test_layerdrop_never_hides_a_layer_from_the_adapter_bookkeeping(tmp_path):
    """M2M-100's checkpoints record LayerDrop 0.05; its layer list drops layers when iterated in training mode."""
    from types import SimpleNamespace

    from fairseq.data import Dictionary

    from nmt.models import AdapterTransformerModel

    args = train_args([str(tmp_path), "--user-dir", USER_DIR, "--task", "adapter_translation", "--lang-pairs", "en-de",
                       "--arch", "adapter_m2m100_418m", *SCALE, "--encoder-layers", "3", "--decoder-layers", "3",
                       "--encoder-layerdrop", "0.999", "--decoder-layerdrop", "0.999"])
    dictionary = Dictionary()
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary, model_lang_pairs=["en-de"])
    model = AdapterTransformerModel.build_model(args, task).train()
    assert [i for i, _ in model.adapter_banks("encoder")] == [i for i, _ in model.adapter_banks("decoder")] == [0, 1, 2]
    model.set_skipped_layers({"encoder": {1}, "decoder": {0, 2}})
    assert [model.encoder.layers[i].adapter_skipped for i in range(3)] == [False, True, False]
    assert [model.decoder.layers[i].adapter_skipped for i in range(3)] == [True, False, True]
