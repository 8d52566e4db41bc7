"""Shared fixtures: a deterministic fake embedder, the real article, a real index, a real server."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from ingest.documents import Document, load_corpus

if TYPE_CHECKING:
    from service.retriever import Retriever

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
FHS_PDF = REPO / "eval" / "corpora" / "fhs-pdf" / "fhs-3.0.pdf"
HARBOUR_MD = (
    "# Harbour records\n\n## Silting\n\nThe harbour of Port Example silted up in 1820 and the merchants moved north.\n"
)
CITEQA = [sys.executable, "-m", "service.cli"]


class FakeEmbedder:
    """Hashed bag of words: deterministic, instant, and similar texts get similar vectors."""

    name = "fake-hashing-embedder"
    weights_sha256 = "f" * 64

    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.casefold()):
            digest = hashlib.sha256(word.encode()).digest()
            vector[int.from_bytes(digest[:4], "little") % self.dimension] += 1.0
        vector[0] += 1e-3  # no zero vectors
        return vector / np.linalg.norm(vector)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def article() -> Document:
    return load_corpus(CORPUS)[0]


@pytest.fixture(scope="session")
def mixed_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three formats: the article (text, speakers), FHS 3.0 (a 50-page PDF, deep sections) and a
    one-passage Markdown note that no question about the other two brings near the top."""
    corpus = tmp_path_factory.mktemp("mixed") / "corpus"
    shutil.copytree(CORPUS, corpus)
    shutil.copy(FHS_PDF, corpus / FHS_PDF.name)
    (corpus / "harbour.md").write_text(HARBOUR_MD, encoding="utf-8")
    return corpus


@pytest.fixture(scope="session")
def mixed_index(mixed_corpus: Path) -> Path:
    """`mixed_corpus` indexed with the fake embedder (about two seconds)."""
    from ingest.pipeline import build_index

    target = mixed_corpus.parent / "index"
    build_index(mixed_corpus, target, FakeEmbedder())
    return target


@pytest.fixture(scope="session")
def model_dir() -> Path:
    from ingest.embedding import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    """The article indexed with the real model, once per test session."""
    from ingest.onnx_documents import OnnxDocumentEmbedder
    from ingest.pipeline import IngestSettings, build_index

    target = tmp_path_factory.mktemp("real") / "index"
    # As `citeqa ingest` builds it: the ONNX encoder the service serves from embeds the documents too.
    embedder = OnnxDocumentEmbedder(model_dir)
    build_index(CORPUS, target, embedder, IngestSettings(onnx_encoder=True), export_encoder=embedder.export)
    return target


@pytest.fixture(scope="session")
def real_retriever(real_index: Path, model_dir: Path) -> Retriever:
    from ingest.embedding import MODEL_SHA256
    from service.retriever import open_retriever

    return open_retriever(real_index, model_dir, MODEL_SHA256)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_in_thread(app: Any) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 in this process; stopped when the test ends."""
    import httpx
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server not ready"
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def citeqa_env(**overrides: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    env.update(overrides)
    return env


def run_citeqa(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CITEQA, *args], capture_output=True, text=True, timeout=timeout, env=citeqa_env(**env), cwd=REPO
    )


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def start_server(index: Path, timeout: float = 90, **env: str) -> Iterator[Server]:
    """`citeqa serve` on 127.0.0.1 as a real process; yields once /readyz says 200."""
    from eval.bench.load import started

    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "serve.log"
        command = [*CITEQA, "serve", "--index", str(index), "--host", "127.0.0.1", "--port", str(port)]
        with started(command, port, REPO, citeqa_env(**env), timeout, log) as running:
            yield Server(running.url, running.process, log)


@pytest.fixture(scope="session")
def server(real_index: Path) -> Iterator[Server]:
    yield from start_server(real_index)


def write_justified_pdf(path: Path) -> None:
    """A one-page PDF set as pdfTeX sets it: a justified line whose words are placed by kerning
    offsets, no space characters, then words hyphenated at the lines' ends ('dis-' / 'tribution'
    the typesetter's hyphen; 'Non-' / 'Maintainer' and 'stable-' / 'backports' the words' own)."""
    import pypdf
    from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject

    writer = pypdf.PdfWriter()
    page = writer.add_blank_page(width=400, height=200)
    # pdfTeX's fonts give the unused code 32 a glyph width (here 500): the gaps between words,
    # narrower than that, were read as no space at all (Debian's developers-reference: 16% of
    # its lines ran their words together that way, its policy manual's half).
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Times-Roman"),
            NameObject("/FirstChar"): NumberObject(32),
            NameObject("/LastChar"): NumberObject(122),
            NameObject("/Widths"): ArrayObject([NumberObject(500)] * 91),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    stream = DecodedStreamObject()
    # Words placed by kerning offsets (TJ) as pdfTeX sets a tight justified line, no space
    # characters; then a word hyphenated over two lines.
    stream.set_data(
        b"BT /F1 12 Tf 20 150 Td [(The)-199(build)-199(daemons)-199(install)] TJ ET "
        b"BT /F1 12 Tf 20 120 Td (a package unsuitable for dis-) Tj ET "
        b"BT /F1 12 Tf 20 105 Td (tribution today, by a Non-) Tj ET "
        b"BT /F1 12 Tf 20 90 Td (Maintainer upload to stable-) Tj ET "
        b"BT /F1 12 Tf 20 75 Td (backports, as stable-backports allows.) Tj ET"
    )
    page[NameObject("/Contents")] = writer._add_object(stream)
    with path.open("wb") as handle:
        writer.write(handle)
