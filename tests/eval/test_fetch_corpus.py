"""The fetched corpus is what the package holds: its Markdown, decompressed, at its own paths, or nothing."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import tarfile
from pathlib import Path

import pytest

from eval.fetch_corpus import SOURCES, CorpusMismatch, DebianSource, extract_markdown, fetch, tree_digest

FOLDER = "usr/share/doc/demo/"


def _ar_member(name: str, body: bytes) -> bytes:
    header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n".encode()
    return header + body + (b"\n" if len(body) % 2 else b"")


def make_deb(path: Path, files: dict[str, bytes]) -> Path:
    """A Debian package as dpkg-deb writes it: ar of debian-binary, control.tar.xz, data.tar.xz."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    path.write_bytes(
        b"!<arch>\n"
        + _ar_member("debian-binary", b"2.0\n")
        + _ar_member("control.tar.xz", lzma.compress(b""))
        + _ar_member("data.tar.xz", lzma.compress(data.getvalue()))
    )
    return path


def test_markdown_under_the_folder_is_extracted_and_gunzipped(tmp_path: Path) -> None:
    deb = make_deb(
        tmp_path / "demo.deb",
        {
            f"{FOLDER}README.md": b"# Demo\n\nOdd length.",
            f"{FOLDER}api/v1.md.gz": gzip.compress(b"# API v1\n"),
            f"{FOLDER}logo.png": b"\x89PNG",
            "usr/share/doc/other/notes.md": b"# Not ours\n",
        },
    )
    into = tmp_path / "out"
    written = extract_markdown(deb, FOLDER, into)
    assert sorted(p.relative_to(into).as_posix() for p in written) == ["README.md", "api/v1.md"]
    assert (into / "api" / "v1.md").read_bytes() == b"# API v1\n"
    assert (into / "README.md").read_bytes() == b"# Demo\n\nOdd length."


def test_a_package_whose_sha256_differs_is_refused_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deb = make_deb(tmp_path / "demo.deb", {f"{FOLDER}README.md": b"# Demo\n"})
    digest = hashlib.sha256(deb.read_bytes()).hexdigest()
    monkeypatch.setitem(SOURCES, "demo", DebianSource("demo", "1", "0" * 64, FOLDER, ""))
    with pytest.raises(CorpusMismatch, match="sha256"):
        fetch("demo", tmp_path / "cache", deb)
    assert not (tmp_path / "cache" / "demo").exists()

    monkeypatch.setitem(SOURCES, "demo", DebianSource("demo", "1", digest, FOLDER, "f" * 64))
    with pytest.raises(CorpusMismatch, match="extracted files"):
        fetch("demo", tmp_path / "cache", deb)
    assert list((tmp_path / "cache").iterdir()) == []  # the staging folder is gone too

    expected = tree_digest(extract_markdown_to(deb, tmp_path / "reference"))
    monkeypatch.setitem(SOURCES, "demo", DebianSource("demo", "1", digest, FOLDER, expected))
    folder = fetch("demo", tmp_path / "cache", deb)
    assert (folder / "README.md").read_bytes() == b"# Demo\n"


def extract_markdown_to(deb: Path, into: Path) -> Path:
    extract_markdown(deb, FOLDER, into)
    return into


def test_tree_digest_changes_with_a_file_name_or_content(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.md").write_text("one")
    before = tree_digest(tmp_path / "a")
    (tmp_path / "a" / "x.md").write_text("two")
    assert tree_digest(tmp_path / "a") != before
    (tmp_path / "a" / "x.md").rename(tmp_path / "a" / "y.md")
    (tmp_path / "a" / "y.md").write_text("one")
    assert tree_digest(tmp_path / "a") != before


def test_every_recorded_source_pins_a_version_and_both_digests() -> None:
    for source in SOURCES.values():
        assert len(source.sha256) == 64 and len(source.tree_sha256) == 64
        assert "=" not in source.version and source.folder.endswith("/")
