"""Plain parallel files (OPUS/Moses style) and FLORES-200 dev/devtest directories.

Plain files: ``corpus.src`` and ``corpus.tgt``, one segment per line, UTF-8,
line-aligned.  They become ``<split>.<src>-<tgt>.<src|tgt>``; with non-zero
``valid_fraction``/``test_fraction`` the pairs are split by a hash of the
source, so one source never sits in two splits.

FLORES-200: ``<root>/dev/<code>.dev`` and ``<root>/devtest/<code>.devtest``
with codes such as ``eng_Latn``; dev becomes valid and devtest test.  Codes
map to the ISO names used elsewhere here (``FLORES_TO_ISO``; an unknown code
falls back to its ISO 639-3 part, lower-cased, e.g. ``yor_Latn`` -> ``yor``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from adapter_core.io import atomic_write_files

from .common import (DataPrepError, Manifest, SkipLog, file_sha256, fingerprint, parallel_contents, read_parallel,
                     write_parallel)

FLORES_TO_ISO = {
    "eng_Latn": "en", "deu_Latn": "de", "fra_Latn": "fr", "spa_Latn": "es", "ita_Latn": "it", "por_Latn": "pt",
    "rus_Cyrl": "ru", "ukr_Cyrl": "uk", "pol_Latn": "pl", "ces_Latn": "cs", "nld_Latn": "nl", "swe_Latn": "sv",
    "dan_Latn": "da", "fin_Latn": "fi", "est_Latn": "et", "hun_Latn": "hu", "ron_Latn": "ro", "bul_Cyrl": "bg",
    "ell_Grek": "el", "tur_Latn": "tr", "arb_Arab": "ar", "heb_Hebr": "he", "pes_Arab": "fa", "hin_Deva": "hi",
    "ben_Beng": "bn", "tam_Taml": "ta", "tel_Telu": "te", "mar_Deva": "mr", "urd_Arab": "ur", "jpn_Jpan": "ja",
    "kor_Hang": "ko", "zho_Hans": "zh_cn", "zho_Hant": "zh_tw", "vie_Latn": "vi", "tha_Thai": "th",
    "ind_Latn": "id", "zsm_Latn": "ms", "swh_Latn": "sw", "kat_Geor": "ka", "hye_Armn": "hy", "cat_Latn": "ca",
    "eus_Latn": "eu", "glg_Latn": "gl", "srp_Cyrl": "sr", "hrv_Latn": "hr", "slk_Latn": "sk", "slv_Latn": "sl",
    "lit_Latn": "lt", "lvs_Latn": "lv", "nob_Latn": "nb", "isl_Latn": "is", "epo_Latn": "eo", "bel_Cyrl": "be",
    "kaz_Cyrl": "kk", "mkd_Cyrl": "mk", "als_Latn": "sq", "afr_Latn": "af", "azj_Latn": "az",
}
FLORES_SPLITS = {"valid": ("dev", "dev"), "test": ("devtest", "devtest")}


@dataclass
class ParallelConfig:
    # "error": stop at a bad line; "skip": drop the pair, count and report it
    on_bad: str = "error"
    # share of sources (by hash) that go to valid / test; both 0: all in ``split``
    valid_fraction: float = 0.0
    test_fraction: float = 0.0
    # the split name used when no fractions are given
    split: str = "train"
    # replace files another corpus (another source file or pair) wrote into the same folder
    overwrite: bool = False


#: Language codes later steps read back from file names (spm-bin's <split>.<src>-<tgt>.<lang>).
LANG_CODE = re.compile(r"^[A-Za-z0-9_@]+$")


def check_pair(src: str, tgt: str) -> None:
    """Two different language codes that spm-bin and fairseq can read back from the file names."""
    for flag, code in (("--src-lang", src), ("--tgt-lang", tgt)):
        if not LANG_CODE.match(code):
            raise DataPrepError(f"{flag} {code!r}: use letters, digits, '_' or '@' only (e.g. "
                                f"{re.sub(r'[^A-Za-z0-9_@]', '_', code).lower()}); spm-bin and fairseq split file "
                                "names on '.' and '-'")
    if src == tgt:
        raise DataPrepError(f"--src-lang and --tgt-lang are both {src!r}: a direction needs two different languages "
                            "(the target side would overwrite the source side's file)")


def flores_to_iso(code: str) -> str:
    if "_" not in code:
        raise DataPrepError(f"{code!r} is not a FLORES-200 code (expected e.g. eng_Latn)")
    return FLORES_TO_ISO.get(code, code.split("_")[0].lower())


def _hash_split(text: str, config: ParallelConfig) -> str:
    value = int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:12], 16) / float(1 << 48)
    if value < config.test_fraction:
        return "test"
    return "valid" if value < config.test_fraction + config.valid_fraction else "train"


def prepare_files(src_file: Path, tgt_file: Path, src: str, tgt: str, out_dir: Path,
                  config: ParallelConfig = ParallelConfig()) -> dict:
    """Plain parallel files -> fairseq-named splits; returns counts and skips."""
    check_pair(src, tgt)
    out_dir = Path(out_dir)
    manifest = Manifest(out_dir)
    step = f"{src}-{tgt}:{Path(src_file).name}"
    key = fingerprint(asdict(config), file_sha256(src_file), file_sha256(tgt_file), src, tgt)
    if manifest.is_done(step, key):
        return manifest.info(step)
    skips = SkipLog()
    pairs = read_parallel(Path(src_file), Path(tgt_file), config.on_bad, skips)
    if config.valid_fraction or config.test_fraction:
        splits = {"train": [], "valid": [], "test": []}
        for pair in pairs:
            splits[_hash_split(pair[0], config)].append(pair)
    else:
        splits = {config.split: pairs}
    targets = [out_dir / f"{split}.{src}-{tgt}.{lang}" for split, rows in splits.items() if rows for lang in (src, tgt)]
    owners = {path: other for other, entry in manifest.steps.items() if other != step for path in entry.get("outputs", {})}
    taken = [f"{path} (written for {owners[str(path)]})" for path in targets if str(path) in owners and path.exists()]
    if taken and not config.overwrite:
        raise DataPrepError(f"{taken[0]}: another corpus already wrote it; choose another --output-dir, or pass "
                            "--overwrite to replace it")
    contents = {}
    for split, rows in splits.items():
        if rows:
            contents.update(parallel_contents(out_dir, split, src, tgt, rows))
    atomic_write_files(contents)  # every split or none: a full disk leaves no train side without the rest
    outputs = list(contents)
    info = {"counts": {split: len(rows) for split, rows in splits.items()}, **skips.as_dict()}
    manifest.mark_done(step, key, outputs, info=info)
    return info


def prepare_flores(root: Path, codes: list[str], out_dir: Path, on_bad: str = "error") -> dict:
    """FLORES-200 dev/devtest for every pair of ``codes`` (English first) -> valid/test."""
    root, out_dir = Path(root), Path(out_dir)
    if len(codes) < 2:
        raise DataPrepError("FLORES-200: give at least two language codes")
    ordered = sorted(codes, key=lambda c: (flores_to_iso(c) != "en", c))
    manifest = Manifest(out_dir)
    info = {}
    for split, (folder, suffix) in FLORES_SPLITS.items():
        files = {code: root / folder / f"{code}.{suffix}" for code in ordered}
        for code, path in files.items():
            if not path.exists():
                have = sorted(p.name.split(".")[0] for p in (root / folder).glob(f"*.{suffix}"))
                raise DataPrepError(f"{path}: missing; {root / folder} has {have[:20]}{' ...' if len(have) > 20 else ''}")
        for i, a in enumerate(ordered):
            for b in ordered[i + 1:]:
                src, tgt = flores_to_iso(a), flores_to_iso(b)
                step = f"flores:{split}.{src}-{tgt}"
                key = fingerprint(file_sha256(files[a]), file_sha256(files[b]), on_bad)
                if manifest.is_done(step, key):
                    info[step] = manifest.info(step)
                    continue
                skips = SkipLog()
                pairs = read_parallel(files[a], files[b], on_bad, skips)
                outputs = write_parallel(out_dir, split, src, tgt, pairs)
                info[step] = {"pairs": len(pairs), **skips.as_dict()}
                manifest.mark_done(step, key, outputs, info=info[step])
    return info
