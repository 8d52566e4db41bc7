"""The query encoder gives the same vectors on a CPU without AVX-512 or VNNI.

The int8 query encoder's products used to depend on the CPU: AVX2 alone (no VNNI) sums u8 x s8
pairs into int16 with saturation, so an AVX2-only machine encoded every question differently and
`make test` failed there on a floor. Here the encoder runs twice on the same questions: natively
and under qemu's user-mode emulation of an AMD EPYC-Rome (AVX2, no AVX-512), which runs
onnxruntime's AVX2 kernels. CI installs Debian's qemu-user; without it the test is skipped.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from eval.questions import load_questions
from ingest.embedding import MODEL_SHA256
from ingest.onnx_model import QUERY_FILE, OnnxEmbedder
from tests.conftest import REPO

pytestmark = pytest.mark.integration

QEMU = shutil.which("qemu-x86_64")
ENCODE = """
import json, sys
from pathlib import Path
import numpy as np
from numpy._core._multiarray_umath import __cpu_features__ as features
from ingest.onnx_model import OnnxEmbedder
questions = json.loads(sys.stdin.read())
encoder = OnnxEmbedder(Path(sys.argv[1]), "-", threads=1, model_file=sys.argv[2], cache_size=0)
vectors = [encoder.embed_query(q).tolist() for q in questions]
print(json.dumps({"avx2": features["AVX2"], "avx512f": features["AVX512F"], "vectors": vectors}))
"""


@pytest.mark.skipif(platform.machine() != "x86_64" or QEMU is None, reason="needs x86-64 and qemu-user")
def test_an_avx2_only_cpu_encodes_questions_like_this_one(real_index: Path) -> None:
    questions = [q.question for q in load_questions()][:40]
    native = OnnxEmbedder(real_index / "encoder", MODEL_SHA256, threads=1, model_file=QUERY_FILE, cache_size=0)
    expected = np.stack([native.embed_query(q) for q in questions])
    environment = {"PYTHONPATH": f"{sysconfig.get_paths()['purelib']}:{REPO}", "OMP_NUM_THREADS": "1"}
    python = str(Path(sys.executable).resolve())  # qemu runs the interpreter itself, not the venv's link
    emulated = subprocess.run(
        [str(QEMU), "-cpu", "EPYC-Rome", python, "-c", ENCODE, str(real_index / "encoder"), QUERY_FILE],
        input=json.dumps(questions),
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
        cwd=REPO,
        check=True,
    )
    result = json.loads(emulated.stdout.strip().splitlines()[-1])
    assert result["avx2"] and not result["avx512f"], "the emulated CPU must be AVX2 without AVX-512"
    cosines = (np.asarray(result["vectors"]) * expected).sum(axis=1)
    # Float rounding in the non-integer operators can still move a vector a little; the int8
    # products no longer do (before 7-bit weights: every question, cosine 0.984-0.997).
    assert cosines.min() >= 0.995, questions[int(cosines.argmin())]
    assert (cosines >= 1 - 1e-5).mean() >= 0.9, sorted(cosines)[:5]
