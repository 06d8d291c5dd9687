"""Flaky networks and hostile indexes, on the real loopback fault server.

Every case repairs the saved broken torch_groups lock against indexes that require Basic
auth, with the credentials (``SECRET``) embedded in pyproject's index URLs, and then:

- the exit code is the one expected (0 repaired, 3 could not verify);
- the lock is byte for byte the old one, or exactly what a fault-free repair writes;
- no output (stdout, stderr, ``--diff``, ``--format json``), nor the lock, contains SECRET;
- no traceback.

Transient faults (fail twice, then answer) must be retried into a successful repair;
persistent ones must leave the lock alone and exit 3 (without ``--keep-going``).
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fixtures.server import Fault, IndexServer
from lockfix.lock.lockfile import parse_lock

from .conftest import SECRET, USER, Index, record

CU126_METADATA = ("/cu126/files/", ".metadata")
CU126_PAGE = ("/cu126/simple/torch/", "")
CU126_FILES = ("/cu126/files/", ".whl")
PYPI_TORCH_METADATA = ("/pypi/files/torch-", ".metadata")  # the PyPI torch the lock got wrong
PYPI_FILELOCK_METADATA = ("/pypi/files/filelock-", ".metadata")  # a leaf: no edges of its own
FAST = {"UV_HTTP_RETRIES": "1"}  # persistent faults: one retry is enough to show it


def matching(where: tuple[str, str], fault: Fault | int, times: int | None = None):  # type: ignore[no-untyped-def]
    """A hook answering ``fault`` for GETs of paths under ``where`` (prefix, suffix), the
    first ``times`` times per path (every time if None)."""
    prefix, suffix = where
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def hook(method: str, path: str) -> Fault | int | None:
        if not (path.startswith(prefix) and path.endswith(suffix)):
            return None
        with lock:
            seen[path] = seen.get(path, 0) + 1
            count = seen[path]
        if times is not None and count > times:
            return None
        return fault

    return hook


_BOMB: bytes | None = None


def bomb() -> bytes:
    """256 MiB of spaces, gzipped (~250 KiB): more than the 128 MiB page limit."""
    global _BOMB
    if _BOMB is None:
        _BOMB = gzip.compress(b" " * (256 * 1024 * 1024), compresslevel=9)
    return _BOMB


@dataclass
class Case:
    name: str
    setup: Callable[[Index], None]
    exit: int
    lock: str  # "unchanged" | "repaired" | "partial"
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    min_seconds: float = 0.0


def hook(where: tuple[str, str], fault: Fault | int, times: int | None = None):  # type: ignore[no-untyped-def]
    return lambda index: index.server.add_fault(matching(where, fault, times))


HTML = {"Content-Type": "text/html"}
PEP691 = {"Content-Type": "application/vnd.pypi.simple.v1+json"}


def json_page(body: bytes) -> Fault:
    return Fault(status=200, headers=PEP691, body=body)


def configure(**options):  # type: ignore[no-untyped-def]
    return lambda index: index.server.configure("cu126", **options)


def both(*setups):  # type: ignore[no-untyped-def]
    def run(index: Index) -> None:
        for setup in setups:
            setup(index)

    return run


CASES = [
    Case("no fault", lambda index: None, 0, "repaired"),
    Case(
        "timeout: page 3 s > UV_HTTP_TIMEOUT=1, always",
        hook(CU126_PAGE, Fault(delay=3)),
        3,
        "unchanged",
        env={"UV_HTTP_TIMEOUT": "1", **FAST},
    ),
    Case(
        "timeout: page 3 s > UV_HTTP_TIMEOUT=1, twice",
        hook(CU126_PAGE, Fault(delay=3), times=2),
        0,
        "repaired",
        env={"UV_HTTP_TIMEOUT": "1"},
    ),
    Case("HTTP 500 on metadata, always", hook(CU126_METADATA, 500), 3, "unchanged", env=FAST),
    Case("HTTP 502 on metadata, twice", hook(CU126_METADATA, 502, times=2), 0, "repaired"),
    Case("HTTP 503 on page, always", hook(CU126_PAGE, 503), 3, "unchanged", env=FAST),
    Case("HTTP 503 on page, twice", hook(CU126_PAGE, 503, times=2), 0, "repaired"),
    Case(
        "HTTP 429 Retry-After: 1, twice",
        hook(CU126_PAGE, Fault(status=429, headers={"Retry-After": "1"}), times=2),
        0,
        "repaired",
        min_seconds=2.0,
    ),
    Case(
        "reset mid-body, always",
        hook(CU126_PAGE, Fault(reset_after=200)),
        3,
        "unchanged",
        env=FAST,
    ),
    Case("reset mid-body, twice", hook(CU126_PAGE, Fault(reset_after=200), times=2), 0, "repaired"),
    Case("reset before answer, twice", hook(CU126_METADATA, Fault(reset=True), 2), 0, "repaired"),
    Case("truncated body, always", hook(CU126_METADATA, Fault(truncate=40)), 3, "unchanged", FAST),
    Case("truncated body, twice", hook(CU126_METADATA, Fault(truncate=40), 2), 0, "repaired"),
    Case(
        "Content-Length too long, always",
        hook(CU126_PAGE, Fault(content_length=10_000_000)),
        3,
        "unchanged",
        env={"UV_HTTP_TIMEOUT": "2", **FAST},
    ),
    Case(
        "Content-Length too short, always",
        hook(CU126_PAGE, Fault(content_length=60)),
        3,
        "unchanged",
        env=FAST,
    ),
    Case(
        "Content-Length too short on metadata, always",
        hook(CU126_METADATA, Fault(content_length=60)),
        0,
        "repaired",  # its hash fails: falls back to range reads of the wheel
        env=FAST,
    ),
    Case("range header ignored (no PEP 658)", configure(pep658=False, ranges=False), 0, "repaired"),
    Case(".metadata hash mismatch", configure(pep658_wrong_hash=True), 0, "repaired"),
    Case(
        "wheel sha256 does not match the lock",
        both(
            configure(pep658=False),
            hook(CU126_FILES, Fault(status=200, body=b"PK\x05\x06" + b"\x00" * 300)),
        ),
        3,
        "unchanged",
        env=FAST,
    ),
    Case(
        "endless redirect loop",
        lambda index: index.server.add_fault(
            matching(CU126_PAGE, Fault(status=302, headers={"Location": CU126_PAGE[0]}))
        ),
        3,
        "unchanged",
    ),
    Case(
        "compression bomb page (256 MiB gzip)",
        hook(CU126_PAGE, Fault(status=200, headers={"Content-Encoding": "gzip"}, body=b"")),
        3,
        "unchanged",
        env=FAST,
    ),
    Case(
        "huge metadata body (20 MiB)",
        hook(CU126_METADATA, Fault(status=200, body=b"Metadata-Version: 2.1\n" * 1_000_000)),
        0,
        "repaired",  # over the metadata size limit: falls back to range reads
    ),
    Case(
        "page is not HTML (garbage)",
        hook(CU126_PAGE, Fault(status=200, headers=HTML, body=b"\x00\xff<<<>>>&&&\xfe")),
        3,
        "unchanged",
    ),
    Case("page is JSON, not PEP 691", hook(CU126_PAGE, json_page(b'{"foo": 1}')), 3, "unchanged"),
    Case(
        "PEP 691 page nested 100,000 deep",
        hook(CU126_PAGE, json_page(b'{"files": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}")),
        3,
        "unchanged",
    ),
    Case(
        "HTTP 500 on PyPI torch metadata, always",
        hook(PYPI_TORCH_METADATA, 500),
        3,
        "unchanged",
        env=FAST,
    ),
    Case(
        "HTTP 500 on PyPI torch metadata, always, --keep-going",
        hook(PYPI_TORCH_METADATA, 500),
        3,
        "partial",
        env=FAST,
        args=("--keep-going",),
    ),
    Case(
        "HTTP 500 on PyPI filelock metadata, always",
        hook(PYPI_FILELOCK_METADATA, 500),
        3,
        "unchanged",
        env=FAST,
    ),
    Case(
        # filelock's own edges (it has none) are all that is left unverified: with
        # --keep-going the verified part is the whole repair
        "HTTP 500 on PyPI filelock metadata, always, --keep-going",
        hook(PYPI_FILELOCK_METADATA, 500),
        3,
        "repaired",
        env=FAST,
        args=("--keep-going",),
    ),
]


def _bomb_setup(index: Index) -> None:
    fault = Fault(status=200, headers={"Content-Encoding": "gzip"}, body=bomb())
    index.server.add_fault(matching(CU126_PAGE, fault))


for _case in CASES:
    if _case.name.startswith("compression bomb"):
        _case.setup = _bomb_setup


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text
        assert f"{USER}:{SECRET}" not in text


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault(secret_index: Index, faults: None, case: Case) -> None:
    index = secret_index
    case.setup(index)
    project = index.project()
    result = index.run("repair", "uv.lock", "--diff", *case.args, cwd=project, env=case.env)
    written = (project / "uv.lock").read_text()
    assert "Traceback" not in result.output, result.output
    assert result.returncode == case.exit, result.output
    assert result.seconds >= case.min_seconds
    if case.lock == "unchanged":
        assert written == index.broken
        assert "wrote" not in result.stderr
    elif case.lock == "repaired":
        assert written == index.repaired
    else:  # --keep-going: the verified part is written, the unverified package kept
        parse_lock(written)
        lock = parse_lock(written)
        # (here nothing else can change without torch: the nvidia fixes hang off its edges)
        torch = [p for p in lock.packages if p.name == "torch" and "pypi" in p.source.location]
        old = [p for p in parse_lock(index.broken).packages if p.id == torch[0].id]
        assert torch[0].dependencies == old[0].dependencies  # the unverified one is kept
    leftovers = [p.name for p in project.iterdir() if p.name.startswith(".uv.lock")]
    assert leftovers == []
    # check, on a lock with nothing else wrong: exit 3 exactly when something could not be
    # verified, with the packages concerned reported as failed
    checked = index.project(index.repaired)
    check = index.run("check", "uv.lock", "--format", "json", cwd=checked, env=case.env)
    assert "Traceback" not in check.output, check.output
    assert check.returncode == case.exit, check.output
    report = json.loads(check.stdout)
    assert report["findings"] == []
    failed = [u for u in report["unverified"] if u["status"] == "failed"]
    assert bool(failed) == (case.exit == 3), report["unverified"]
    assert_no_secret(result.stdout, result.stderr, check.stdout, check.stderr, written)
    outcome = {"repaired": "changed correctly", "partial": "unverified part kept"}
    record(f"fault: {case.name}", result, outcome.get(case.lock, case.lock), secrets=(SECRET,))
    record(f"fault: {case.name} (check --format json)", check, "unchanged", secrets=(SECRET,))


def test_redirect_to_another_host_drops_credentials(
    secret_index: Index, faults: None, tmp_path: Path
) -> None:
    """cu126 answers every request with a 307 to the same path on `localhost` (another
    host): lockfix may follow it, but the credentials must not."""
    index = secret_index
    with IndexServer(index.built) as other:
        target = f"http://localhost:{other.port}"

        def redirect(method: str, path: str) -> Fault | None:
            if path.startswith("/cu126/"):
                return Fault(status=307, headers={"Location": f"{target}{path}"})
            return None

        index.server.add_fault(redirect)
        project = index.project()
        result = index.run("repair", "uv.lock", "--diff", cwd=project)
        assert "Traceback" not in result.output
        # 1: the files now come from another host (artifact-host-mismatch): refused
        assert result.returncode in (0, 1, 3), result.output
        assert other.requests, "the redirect was not followed"
        for request in other.requests:
            assert "authorization" not in {k.lower() for k in request.headers}, request
        written = (project / "uv.lock").read_text()
        assert written in (index.broken, index.repaired)
        assert_no_secret(result.stdout, result.stderr, written)
        record(
            "fault: redirect to another host (no credentials sent there)",
            result,
            "changed correctly" if written == index.repaired else "unchanged",
            secrets=(SECRET,),
        )


def test_transient_fault_is_retried(index: Index, faults: None) -> None:
    """503 twice per metadata file, then the answer: every file is asked three times."""
    index.server.add_fault(matching(CU126_METADATA, 503, times=2))
    index.server.reset_log()
    project = index.project()
    result = index.run("repair", "uv.lock", cwd=project)
    assert result.returncode == 0, result.output
    assert (project / "uv.lock").read_text() == index.repaired
    asked = [r for r in index.server.metadata_requests("cu126")]
    by_path: dict[str, list[int]] = {}
    for request in asked:
        by_path.setdefault(request.path, []).append(request.status)
    assert by_path and all(statuses == [503, 503, 200] for statuses in by_path.values()), by_path


def _links_with_password(index: Index) -> bytes:
    """The cu126 torch page (PEP 691), its file links absolute and carrying the password."""
    page_url = f"{index.server.url}{CU126_PAGE[0]}"
    token = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
    headers = {"Accept": "application/vnd.pypi.simple.v1+json", "Authorization": f"Basic {token}"}
    with urllib.request.urlopen(urllib.request.Request(page_url, headers=headers)) as response:
        page = json.loads(response.read())
    for file in page["files"]:
        link = urllib.parse.urljoin(page_url, file["url"])
        file["url"] = link.replace("http://", f"http://{USER}:{SECRET}@", 1)
    return json.dumps(page).encode()


@pytest.mark.parametrize("where", ["lock", "redirect", "links"])
def test_a_password_in_urls_lockfix_reads_is_never_printed(
    secret_index: Index, faults: None, where: str
) -> None:
    """The password is in URLs lockfix reads, and the failing URLs are named in every
    report, so only redaction keeps the password out of what lockfix prints: "lock": the
    lock's own index URLs carry it (as a hand-edited lock may) and the cu126 index keeps
    failing; "redirect": cu126 answers its torch page with an endless redirect to a URL
    that carries it."""
    index = secret_index
    port = index.server.port
    text = index.repaired
    page = f"127.0.0.1:{port}{CU126_PAGE[0]}"
    if where == "lock":
        userinfo = f'registry = "http://{USER}:{SECRET}@127.0.0.1:{port}/'
        text = text.replace(f'registry = "http://127.0.0.1:{port}/', userinfo)
        assert text.count(SECRET) > 5
        index.server.add_fault(matching(CU126_PAGE, 503))
    elif where == "links":
        body = _links_with_password(index)
        json_page = {"Content-Type": "application/vnd.pypi.simple.v1+json"}
        index.server.add_fault(
            matching(CU126_PAGE, Fault(status=200, headers=json_page, body=body))
        )
        index.server.add_fault(matching(CU126_FILES, 500))
        index.server.add_fault(matching(CU126_METADATA, 500))
        page = f"127.0.0.1:{port}{CU126_FILES[0]}"
    else:
        target = f"http://{USER}:{SECRET}@{page}"
        index.server.add_fault(
            matching(CU126_PAGE, Fault(status=302, headers={"Location": target}))
        )
    project = index.project(text)
    for args in (("check",), ("check", "-v"), ("check", "--format", "github"), ("repair",)):
        result = index.run(*args, "uv.lock", cwd=project, env=FAST)
        assert "Traceback" not in result.output, result.output
        assert_no_secret(result.stdout, result.stderr)
        assert result.returncode == 3, result.output
        assert f"http://{page}" in result.output, result.output  # the URL, redacted
    assert (project / "uv.lock").read_text() == text


@pytest.mark.parametrize(
    "args",
    [("check",), ("check", "-q"), ("check", "--format", "json"), ("repair", "--keep-going")],
    ids=["check", "check -q", "check json", "repair --keep-going"],
)
def test_could_not_verify_is_one_line_on_stderr(
    secret_index: Index, faults: None, args: tuple[str, ...]
) -> None:
    """Exit 3 says why on stderr, in one line, without the index password; the report
    stays on stdout."""
    index = secret_index
    index.server.add_fault(matching(PYPI_TORCH_METADATA, 500))
    project = index.project()
    result = index.run(*args, "uv.lock", cwd=project, env=FAST)
    assert result.returncode == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lockfix: could not verify uv.lock: 1 package(s)"), lines
    assert "torch 2.7.1" in lines[0] and "HTTP 500" in lines[0], lines
    assert_no_secret(result.stdout, result.stderr)
    if "-q" in args:
        assert result.stdout == ""
    elif "json" in args:
        assert json.loads(result.stdout)["unverified"]
    else:
        assert "could not be checked" in result.stdout
