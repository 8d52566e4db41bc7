"""Fetch a corpus too large for the repository: download its package, check its sha256, extract its Markdown.

`python -m eval.fetch_corpus docker-doc` (or `--archive FILE` for a package already downloaded)
writes the Markdown files into `.cache/corpora/docker-doc/`, outside git. The package's sha256
and the digest of the extracted tree are recorded here, so the files are the published ones.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import lzma
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ingest.index_store import file_sha256

DEFAULT_CACHE = Path(".cache/corpora")


class CorpusMismatch(Exception):
    """A downloaded package or an extracted tree is not the one recorded."""


@dataclass(frozen=True)
class DebianSource:
    """Markdown files (plain or gzipped by Debian) under one folder of a Debian binary package."""

    package: str
    version: str
    sha256: str
    folder: str  # inside the package, e.g. "usr/share/doc/docker-doc/"
    tree_sha256: str  # tree_digest of the extracted files

    @property
    def filename(self) -> str:
        return f"{self.package}_{self.version.replace(':', '%3a')}_all.deb"


SOURCES: dict[str, DebianSource] = {
    # Docker 20.10's Engine API and CLI reference (Apache-2.0), Debian bookworm: 171 files, 1.77 MB.
    "docker-doc": DebianSource(
        package="docker-doc",
        version="20.10.24+dfsg1-1+deb12u1",
        sha256="b665c4be8746a496c8f561d42ff8026fbed2ee6581e53fa63df40656a9d80eeb",
        folder="usr/share/doc/docker-doc/",
        tree_sha256="9c7e85b42d6c8bd89eaeb6e752ffa80376e451b5403392ba7541a21f60fc566f",
    ),
}


def tree_digest(folder: Path) -> str:
    """One sha256 over every file's relative path and sha256, in path order."""
    lines = sorted(f"{file_sha256(p)}  {p.relative_to(folder).as_posix()}\n" for p in folder.rglob("*") if p.is_file())
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def _deb_data(archive: Path) -> tarfile.TarFile:
    """The data.tar.* member of a .deb, which is an `ar` archive of fixed 60-byte headers."""
    raw = archive.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise CorpusMismatch(f"{archive}: not a Debian package")
    at = 8
    while at + 60 <= len(raw):
        name, size = raw[at : at + 16].decode().strip().rstrip("/"), int(raw[at + 48 : at + 58])
        body = raw[at + 60 : at + 60 + size]
        if name.startswith("data.tar"):
            if name.endswith(".xz"):
                body = lzma.decompress(body)
            elif name.endswith(".gz"):
                body = gzip.decompress(body)
            return tarfile.open(fileobj=io.BytesIO(body))
        at += 60 + size + size % 2
    raise CorpusMismatch(f"{archive}: no data.tar member")


def extract_markdown(archive: Path, folder: str, into: Path) -> list[Path]:
    """Every `*.md` and `*.md.gz` under `folder` of the package, decompressed, at its path below `folder`."""
    written = []
    with _deb_data(archive) as data:
        for member in data.getmembers():
            name = member.name.removeprefix("./")
            if not member.isfile() or not name.startswith(folder) or not name.endswith((".md", ".md.gz")):
                continue
            handle = data.extractfile(member)
            assert handle is not None  # a regular file always has content
            body = handle.read()
            relative = name.removeprefix(folder)
            if relative.endswith(".gz"):
                body, relative = gzip.decompress(body), relative.removesuffix(".gz")
            target = into / relative
            if not target.resolve().is_relative_to(into.resolve()):
                raise CorpusMismatch(f"{archive}: {name} would land outside {into}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
            written.append(target)
    return written


def download(source: DebianSource, into: Path) -> Path:
    """`apt-get download` of the recorded version (Debian's own client, signatures checked by apt)."""
    subprocess.run(["apt-get", "download", f"{source.package}={source.version}"], cwd=into, check=True)
    return into / source.filename


def fetch(name: str, cache: Path, archive: Path | None = None) -> Path:
    """The corpus folder `cache/name`, extracted anew from a verified package; raises CorpusMismatch."""
    source = SOURCES[name]
    with tempfile.TemporaryDirectory() as scratch:
        package = archive if archive is not None else download(source, Path(scratch))
        if (digest := file_sha256(package)) != source.sha256:
            raise CorpusMismatch(f"{package}: sha256 {digest}, expected {source.sha256}")
        folder = cache / name
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))  # renamed into place once verified
        try:
            extract_markdown(package, source.folder, staging)
            if source.tree_sha256 and (tree := tree_digest(staging)) != source.tree_sha256:
                raise CorpusMismatch(f"{name}: extracted files digest {tree}, expected {source.tree_sha256}")
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.fetch_corpus", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(SOURCES))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="folder the corpus folder is written in")
    parser.add_argument("--archive", type=Path, help="the package, already downloaded (else apt-get download)")
    args = parser.parse_args(argv)
    try:
        folder = fetch(args.name, args.cache, args.archive)
    except (CorpusMismatch, subprocess.CalledProcessError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    files = [p for p in folder.rglob("*") if p.is_file()]
    print(
        f"{folder}: {len(files)} files, {sum(p.stat().st_size for p in files) / 1e6:.2f} MB, tree {tree_digest(folder)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
