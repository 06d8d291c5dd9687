"""`lockfix check` on every real lock in ../shared/real-locks against real PyPI (opt-in:
``pytest -m network``).

These locks were written by uv for public projects; a finding on one is false unless the
lock and its index really disagree. Each such true finding is listed below with its reason;
any other finding fails the test, for whatever lock is put in the folder. Packages from
indexes this machine cannot reach (download.pytorch.org, mirrors, private feeds) are
reported as not verified, never as findings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_lockfix

REPO = Path(__file__).resolve().parents[2]
REAL_LOCKS = sorted((REPO.parent / "shared" / "real-locks").glob("*/uv.lock"))
PYPI = "https://pypi.org/simple"

_ZENSICAL = "wheels the lock records (armv7l, i686, win32) are no longer listed by PyPI"
_USEARCH = (
    "wheels of usearch 2.21.0 disagree: the Windows wheels declare no simsimd, and uv "
    "locked the other wheels' simsimd edge for every platform"
)
_ECCODES = (
    "wheels of eccodes 2.47.0 disagree: the py3-none-any wheel (Linux, macOS) declares "
    "eccodeslib; uv locked a Windows wheel's metadata, which lacks it"
)
_CUDA_PYTHON = (
    "cuda-python 13.0.3 is installed with the trtllm extra on every platform, and its only "
    "wheel declares cuda-bindings and cuda-pathfinder unconditionally; the uv that wrote "
    "this revision-2 lock left those edges at sys_platform == 'darwin' (the fork of the "
    "vllm extra), so Linux gets cuda-python without them"
)
# (lock folder, package, version, finding kind) → why the finding is true
TRUE_FINDINGS: dict[tuple[str, str, str, str], str] = {
    ("Kiln-AI__Kiln__libs-core", "ruff", "0.9.0", "artifact-name-mismatch"): (
        "the lock names ruff 0.9.0 but records the files of ruff 0.7.1 (an edited lock)"
    ),
    (
        "NVIDIA-NeMo__Export-Deploy",
        "apache-tvm-ffi",
        "0.1.10rc1",
        "artifact-upload-time-mismatch",
    ): (
        "PyPI now gives 2026-04-15 as the upload time of the very files (same sha256) the "
        "lock recorded at 2026-03-31"
    ),
    ("NVIDIA-NeMo__Megatron-Bridge", "hf-xet", "1.3.0b0", "artifact-upload-time-mismatch"): (
        "PyPI now gives 2026-02-15 as the upload time of the very files (same sha256) the "
        "lock recorded at 2026-01-28"
    ),
    ("NVIDIA-NeMo__Export-Deploy", "cuda-python", "13.0.3", "wrong-marker"): _CUDA_PYTHON,
    ("NVIDIA__NeMo-Agent-Toolkit", "usearch", "2.21.0", "wrong-marker"): _USEARCH,
    ("NVIDIA__NeMo-Agent-Toolkit", "usearch", "2.21.0", "wheels-disagree"): _USEARCH,
    ("NVIDIA__earth2studio", "eccodes", "2.47.0", "missing-dependency"): _ECCODES,
    ("NVIDIA__earth2studio", "eccodes", "2.47.0", "wheels-disagree"): _ECCODES,
    ("NVIDIA__earth2studio", "zensical", "0.0.53", "artifact-unknown"): _ZENSICAL,
    ("docling-project__docling", "zensical", "0.0.52", "artifact-unknown"): _ZENSICAL,
    ("paperless-ngx__paperless-ngx", "zensical", "0.0.51", "artifact-unknown"): _ZENSICAL,
    ("pyannote__pyannote-audio", "torch", "2.10.0", "artifact-unknown"): (
        "PyPI replaced torch 2.10.0's macOS wheels of build 1 by build 2; the locked "
        "build-1 files are gone"
    ),
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One metadata cache for every lock: they share many files."""
    return tmp_path_factory.mktemp("real-locks-cache")


@pytest.mark.network
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("path", REAL_LOCKS, ids=lambda p: p.parent.name)
def test_a_real_lock_has_only_true_findings(path: Path, cache: Path) -> None:
    result = run_lockfix("check", str(path), "--format", "json", cwd=path.parent, cache=cache)
    assert result.returncode in (0, 1, 3), result.stderr
    report = json.loads(result.stdout)
    folder = path.parent.name
    false = [
        f"{f['package']} {f['version']} {f['kind']}: {f['message']}"
        for f in report["findings"]
        if (folder, f["package"], f["version"], f["kind"]) not in TRUE_FINDINGS
    ]
    assert false == []
    # PyPI is reachable: only packages of other indexes may go unverified for a failure
    failed = [
        f"{u['package']} {u['version']}: {u['reason']}"
        for u in report["unverified"]
        if u["status"] == "failed" and u["source"].rstrip("/") == PYPI
    ]
    assert failed == []
    assert report["verified"] > 0 or not any(
        f'registry = "{PYPI}"' in line for line in path.read_text().splitlines()
    )
