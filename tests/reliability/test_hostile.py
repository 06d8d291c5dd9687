"""Hostile paths, hostile indexes, hostile input: no damage, no hang, no unbounded work.

Everything runs the real command line (or the real index client) against real loopback
servers. A FIFO or a device node stands where a file is expected; they are made in the
test's own folder (``mknod`` needs root: those cases are skipped otherwise), never the
system's ``/dev`` entries. A test that would hang without its fix is bounded by the
subprocess timeout, which only turns a hang into a failure: no assert is on time.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import os
import resource
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.builder import BuiltScenario, build_scenario
from fixtures.scenarios import get_wheel_scenario, make_wheels_project
from fixtures.server import Fault, IndexServer
from fixtures.uvrun import run_uv, uv_bin
from lockfix.dist.simple import ProjectPage
from lockfix.errors import IndexRequestError
from lockfix.index.auth import CredentialProvider
from lockfix.index.http import IndexClient
from lockfix.lock.lockfile import parse_lock
from lockfix.markers import _bdd as bdd
from lockfix.markers._parse import parse_marker
from lockfix.urls import redact_text

from .conftest import SECRET, USER, Index, Run

HANG = 60  # seconds: only reached when something blocks (a FIFO) or never ends (a device)


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _device(major: int, minor: int) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
        except PermissionError:
            pytest.skip("mknod needs root")
        return path

    return make


NODES = {
    "fifo": _fifo,
    "null-like device": _device(1, 3),  # /dev/null's numbers, made here
    "zero-like device": _device(1, 5),  # /dev/zero's numbers: reads never end
}


def _bounded() -> None:
    """A child that reads a zero-like device without end fails at 2 GiB, not the machine."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def _lockfix(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Run:
    """``python -m lockfix ARGS --cache-dir cwd/cache``, memory-bounded, killed after HANG."""
    argv = [sys.executable, "-m", "lockfix", *args, "--cache-dir", str(cwd / "cache")]
    result = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=HANG,
        env={**os.environ, **(env or {})},
        preexec_fn=_bounded,
    )
    return Run(tuple(args), result.returncode, result.stdout, result.stderr, 0.0)


def _identity(path: Path) -> tuple[int, int, int]:
    info = path.lstat()
    return stat.S_IFMT(info.st_mode), info.st_rdev, info.st_ino


@pytest.mark.parametrize("node", list(NODES))
@pytest.mark.parametrize("link", [False, True], ids=["direct", "symlink"])
def test_repair_output_onto_a_special_file_is_refused(
    index: Index, node: str, link: bool, tmp_path: Path
) -> None:
    """``repair -o NODE`` (or a symlink to one): exit 2, one line, the node and the lock
    untouched, no temp file left."""
    project = index.project()
    special = NODES[node](tmp_path / "special")
    before = _identity(special)
    output = special
    if link:
        output = tmp_path / "link"
        output.symlink_to(special)
    result = _lockfix("repair", "uv.lock", "-o", str(output), cwd=project)
    assert result.returncode == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a regular file" in lines[0], result.stderr
    assert str(output) in lines[0]
    assert _identity(special) == before
    assert (project / "uv.lock").read_text() == index.broken
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"special", output.name})


@pytest.mark.parametrize("node", list(NODES))
def test_atomic_write_refuses_a_special_file(node: str, tmp_path: Path) -> None:
    """The writer itself refuses, whoever calls it: nothing is read from the node (a FIFO
    would block, a zero-like device never end) and nothing replaces it."""
    special = NODES[node](tmp_path / "special")
    before = _identity(special)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from lockfix.safeio import InputError, write_atomically\n"
        "try:\n"
        "    write_atomically(Path(sys.argv[1]), 'version = 1\\n')\n"
        "except InputError as error:\n"
        "    print(error)\n"
        "    sys.exit(2)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(special)],
        capture_output=True,
        text=True,
        timeout=HANG,
        preexec_fn=_bounded,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "not a regular file" in result.stdout
    assert _identity(special) == before
    assert [p.name for p in tmp_path.iterdir()] == ["special"]


@pytest.mark.parametrize("command", ["check", "repair"])
@pytest.mark.parametrize("node", list(NODES))
@pytest.mark.parametrize("name", ["uv.lock", "pyproject.toml", "uv.toml"])
def test_special_file_as_input_is_refused(
    index: Index, command: str, node: str, name: str, tmp_path: Path
) -> None:
    """A FIFO or a device as the lock or a project file beside it: exit 2 with one line
    naming it, never a blocked open or an endless read. ``check`` first goes through the
    verdict fast path (lockfix.cli._entry), which reads all three."""
    project = index.project(index.reference)
    (project / name).unlink(missing_ok=True)
    NODES[node](project / name)
    before = {p.name: _identity(p) for p in project.iterdir()}
    result = _lockfix(command, "uv.lock", cwd=project)
    assert result.returncode == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0] and "not a regular file" in lines[0], result.stderr
    after = {p.name: _identity(p) for p in project.iterdir() if p.name != "cache"}
    assert after == before


# -- an index outage under --keep-going ---------------------------------------------------

NIGHTLY = "wheels_torch_nightly"  # torch's Linux x86_64 wheels alone declare the nvidia pins


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The torch nightly index on loopback and its right lock: what current uv writes
    (one wheel's metadata, no nvidia-*), repaired by a fault-free run."""
    if not uv_bin("0.13.9").exists():
        pytest.skip("real uv binaries missing: run `make tools`")
    root = tmp_path_factory.mktemp("nightly")
    built = build_scenario(get_wheel_scenario(NIGHTLY), root / "build")
    server = IndexServer(built).start()
    project = make_wheels_project(NIGHTLY, server, root / "uv")
    run_uv("0.13.9", ["lock"], project, root / "uv-tmp")
    repaired = _lockfix("repair", "uv.lock", cwd=project)
    assert repaired.returncode == 0, repaired.output
    good = (project / "uv.lock").read_text()
    assert 'name = "nvidia-cudnn-cu12"' in good and 'name = "pytorch-triton"' in good
    yield server, good, root
    server.stop()


def _blocks(text: str) -> dict[str, str]:
    lock = parse_lock(text)
    return {f"{p.name} {p.version}": lock.blocks[p.block] for p in lock.packages}


@pytest.mark.parametrize("keep_going", [False, True], ids=["stop", "keep-going"])
def test_outage_on_some_wheels_removes_nothing_they_reach(nightly, keep_going: bool) -> None:  # type: ignore[no-untyped-def]
    """torch's Linux x86_64 wheels (the only ones declaring nvidia-* and pytorch-triton) cannot be
    read; its other wheels can. torch is then not verified: the edges and packages only
    those wheels declare are kept, and only the verified part (jinja2's dropped edge) is
    repaired, with --keep-going; without it, nothing is written. Exit 3 either way."""
    server, good, root = nightly
    broken = good.replace('dependencies = [\n    { name = "markupsafe" },\n]\n', "", 1)
    assert broken != good
    project = make_wheels_project(NIGHTLY, server, root / f"outage-{keep_going}")
    (project / "uv.lock").write_text(broken)

    def outage(method: str, path: str) -> int | None:
        torch_linux = path.startswith("/nightly/files/torch-") and "x86_64" in path
        return 503 if torch_linux else None

    server.add_fault(outage)
    try:
        args = ("--keep-going",) if keep_going else ()
        result = _lockfix("repair", "uv.lock", *args, cwd=project, env={"UV_HTTP_RETRIES": "0"})
    finally:
        server.clear_faults()
    assert result.returncode == 3, result.output
    assert "Traceback" not in result.output
    written = (project / "uv.lock").read_text()
    if not keep_going:
        assert written == broken
        return
    assert "wrote uv.lock" in result.stderr
    assert _blocks(written).keys() == _blocks(good).keys()  # nothing removed
    torch = next(k for k in _blocks(good) if k.startswith("torch "))
    assert _blocks(written)[torch] == _blocks(broken)[torch]  # the unverified one is kept
    assert written == good  # the verified part is repaired


# -- credentials in the lock's own URLs ------------------------------------------------------


def _with_userinfo(index: Index, text: str) -> str:
    port = index.server.port
    return text.replace(f"http://127.0.0.1:{port}", f"http://{USER}:{SECRET}@127.0.0.1:{port}")


@pytest.mark.parametrize(
    "args",
    [
        ("check", "--format", "text"),
        ("check", "--format", "json"),
        ("check", "--format", "github"),
        ("check", "--format", "json", "-v"),
        ("repair", "--diff", "--keep-going"),
        ("repair", "--diff", "--keep-going", "--format", "json"),
        ("explain", "torch", "--format", "json"),
        ("explain", "torch"),
    ],
    ids=" ".join,
)
def test_password_in_a_lock_url_is_never_printed(
    secret_index: Index, faults: None, args: tuple[str, ...]
) -> None:
    """A lock that names its indexes (and files) as ``http://user:password@host/...``:
    reports, findings, JSON ``source`` fields, annotations, diffs and could-not-verify
    reasons show ``user:****@``, as uv displays such a URL; the password never."""
    index = secret_index
    project = index.project(_with_userinfo(index, index.broken))
    # one package left unverified: its reason quotes its URL
    index.server.add_fault(lambda method, path: 503 if "/simple/filelock/" in path else None)
    result = _lockfix(*args, "uv.lock", cwd=project, env={"UV_HTTP_RETRIES": "0"})
    assert result.returncode in (1, 3), result.output
    assert "Traceback" not in result.output
    assert SECRET not in result.output
    if "json" in args or "--diff" in args:  # they show the lock's URLs in full: masked
        assert f"{USER}:****@127.0.0.1" in result.output
    if "json" in args and "--diff" not in args:
        sources = _values(json.loads(result.stdout), "source")
        assert sources and all("****@" in s for s in sources if s)


def _values(document: object, key: str) -> list[str]:
    """Every value of ``key`` anywhere in a JSON document."""
    if isinstance(document, list):
        return [v for item in document for v in _values(item, key)]
    if isinstance(document, dict):
        found = [document[key]] if key in document else []
        return found + [v for item in document.values() for v in _values(item, key)]
    return []


@pytest.mark.parametrize("output_format", ["text", "github"])
def test_password_in_a_lock_url_is_not_in_input_errors(
    secret_index: Index, output_format: str
) -> None:
    """A lock error that names a package's source (a dependency with no locked package)."""
    index = secret_index
    lock = _with_userinfo(index, index.broken).replace('name = "filelock"', 'name = "gone"', 1)
    project = index.project(lock)
    result = _lockfix("check", "--format", output_format, "uv.lock", cwd=project)
    assert result.returncode == 2, result.output
    assert "has no locked package" in result.output and "registry+http://" in result.output
    assert SECRET not in result.output
    assert f"{USER}:****@" in result.output


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:secret@host/simple", "https://user:****@host/simple"),
        ("at http://token@h:8080/a, then", "at http://****@h:8080/a, then"),
        ("registry+https://u:p@ss@host/x has", "registry+https://u:****@host/x has"),
        ("git+ssh://git@github.com/o/r.git", "git+ssh://git@github.com/o/r.git"),
        ("https://github.com/o/r.git@v1.0", "https://github.com/o/r.git@v1.0"),
        ("mail root@localhost", "mail root@localhost"),
    ],
)
def test_redact_text_masks_what_uv_masks(text: str, shown: str) -> None:
    assert redact_text(text) == shown


# -- markers built to cost: near-linear, or refused ------------------------------------------

CLAUSES = {
    "or of platforms": lambda n, t: " or ".join(f"sys_platform == '{t}{i}'" for i in range(n)),
    "or of versions": lambda n, t: " or ".join(
        f"python_full_version == '{t}.{i}.1'" for i in range(n)
    ),
    "and of versions": lambda n, t: " and ".join(
        f"python_full_version != '{t}.{i}.1'" for i in range(n)
    ),
    "or of extras": lambda n, t: " or ".join(f"extra == 'e{t}{i}'" for i in range(n)),
    "or of pairs": lambda n, t: " or ".join(
        f"(sys_platform == '{t}{i}' and extra == 'e{t}{i}')" for i in range(n)
    ),
}


def _cells_built(text: str) -> int:
    """Decision-diagram cells (children of new nodes) that parsing ``text`` creates: the
    work of building it, counted rather than timed."""
    first = next(bdd._uids)
    parse_marker(text)
    return sum(len(node.kids) for node in list(bdd._unique.values()) if node.uid > first)


@pytest.mark.parametrize("shape", list(CLAUSES))
def test_marker_parsing_grows_near_linearly(shape: str) -> None:
    """Twice the clauses cost at most ~2.2 times the work (n log n), not 4 times (n²).
    Each size gets values of its own, so nothing built for one is reused by the other."""
    make = CLAUSES[shape]
    small, large = _cells_built(make(60, 1)), _cells_built(make(120, 2))
    assert large / small < 2.6, (small, large)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("os_name == 'posix' or " * 50_000 + "os_name == 'nt'", "characters, more than"),
        ("(" * 100 + "os_name == 'nt'" + ")" * 100, "levels of parentheses"),
        (" or ".join(f"extra == 'e{i}'" for i in range(200)), "distinct extras and atoms"),
        # a diagram exponential in its variables: 2**40 nodes if it were built
        (
            " or ".join(f"(extra == 'a{i:02d}' and extra == 'z{i:02d}')" for i in range(40)),
            "too complex",
        ),
    ],
    ids=["1 MB", "deep", "many extras", "exponential"],
)
def test_marker_beyond_the_bounds_is_refused(text: str, message: str) -> None:
    """A clear InvalidMarker (an input error), in a child process bounded in memory so
    that an unbounded parse fails the test rather than the machine."""
    code = (
        "import sys\n"
        "from lockfix.markers import InvalidMarker, Marker\n"
        "try:\n"
        "    Marker.parse(sys.stdin.read())\n"
        "except InvalidMarker as error:\n"
        "    print(error)\n"
        "    sys.exit(2)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=text,
        capture_output=True,
        text=True,
        timeout=HANG,
        preexec_fn=_bounded,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stdout
    assert len(result.stdout) < 500  # the marker is quoted, not copied whole


# -- indexes that never finish, hosts that never answer ---------------------------------------


@pytest.mark.parametrize("headers", [False, True], ids=["body", "headers"])
def test_slow_loris_index_hits_the_request_deadline(
    index: Index, faults: None, headers: bool
) -> None:
    """A page that trickles out a byte every 0.2 s: no read ever waits UV_HTTP_TIMEOUT
    (1 s), so only the deadline of the whole request ends it. Without one, the page (a few
    kB) would take many minutes and the run would be killed at HANG."""
    index.server.add_fault(
        lambda method, path: (
            Fault(drip=0.2, drip_headers=headers) if path == "/cu126/simple/torch/" else None
        )
    )
    project = index.project()
    env = {"UV_HTTP_TIMEOUT": "1", "UV_HTTP_RETRIES": "1"}
    result = _lockfix("check", "--format", "json", "uv.lock", cwd=project, env=env)
    assert result.returncode in (1, 3), result.output  # 1: the other packages' findings
    unverified = json.loads(result.stdout)["unverified"]
    assert [u["package"] for u in unverified] == ["torch"], unverified
    assert "timed out (DeadlineExceeded)" in unverified[0]["reason"]


def _refused_port() -> tuple[socket.socket, int]:
    """A loopback port bound but not listening: every connection to it is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize("concurrency", [1, 8])
def test_unreachable_host_costs_one_retry_budget(index: Index, concurrency: int) -> None:
    """200 pages on a host that refuses every connection: one request spends its retries
    (2), the others wait for its outcome and then fail without a request, instead of
    200 × 3 attempts. A host that answers is not affected."""
    sock, port = _refused_port()
    good = index.server.index_url("pypi")

    async def run() -> tuple[IndexClient, list[object], list[object]]:
        client = IndexClient(
            retries=2,
            retry_wait=0.01,
            concurrency=concurrency,
            credentials=CredentialProvider(env={}, netrc_path=False),
        )
        async with client:
            dead = client.project_page(f"http://127.0.0.1:{port}/simple", "p")
            pages = [
                client.project_page(f"http://127.0.0.1:{port}/simple", f"p{i}") for i in range(200)
            ]
            alive = [client.project_page(good, name) for name in ("filelock", "sympy")]
            first = await asyncio.gather(dead, *pages, return_exceptions=True)
            second = await asyncio.gather(*alive, return_exceptions=True)
        return client, first, second

    with sock:
        client, failed, answered = asyncio.run(run())
    assert all(isinstance(r, IndexRequestError) for r in failed), failed[:3]
    # one retry budget (2), not one per request; requests already failing when the probe
    # began count their first retry before they wait
    assert client.stats.retries <= 2 + concurrency - 1
    assert client.stats.host_down >= 201 - concurrency
    assert "did not answer" in str(failed[-1])
    assert all(isinstance(r, ProjectPage) for r in answered), answered


# -- one metadata cache, two indexes: what one serves must not decide for the other --------

SHARED = {"name": "demo", "version": "1.0", "tags": ["py3-none-any"]}
HONEST = {
    "indexes": [
        {
            "name": "idx",
            "packages": [
                {**SHARED, "requires-dist": ["dep"]},
                {"name": "dep", "version": "1.0", "tags": ["py3-none-any"]},
            ],
        }
    ]
}
# the same file name; its metadata declares no dependency at all
LIAR = {"indexes": [{"name": "idx", "packages": [{**SHARED, "requires-dist": []}]}]}


def _hostile(honest: BuiltScenario, liar: BuiltScenario, how: str) -> BuiltScenario:
    """``honest`` where demo's wheel keeps its listed sha256 and size, but its metadata
    is the liar's: served as PEP 658 with the hash of what is served (``pep658``), or as
    the bytes of the wheel range reads see (``ranges``), which no hash can check."""
    hostile = copy.deepcopy(honest)
    (fake,) = liar.indexes["idx"].projects["demo"].files
    project = hostile.indexes["idx"].projects["demo"]
    lied = {"metadata": fake.metadata, "metadata_sha256": fake.metadata_sha256}
    if how == "ranges":
        lied["path"] = fake.path
    project.files = [dataclasses.replace(f, **lied) for f in project.files]
    return hostile


@pytest.fixture(scope="module")
def two_indexes(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if not uv_bin("0.13.9").exists():
        pytest.skip("real uv binaries missing: run `make tools`")
    root = tmp_path_factory.mktemp("poison")
    honest = build_scenario(HONEST, root / "build-honest")
    liar = build_scenario(LIAR, root / "build-liar")
    servers = {
        "honest": IndexServer(honest).start(),
        "mirror": IndexServer(honest).start(),
        "pep658": IndexServer(_hostile(honest, liar, "pep658")).start(),
        "ranges": IndexServer(_hostile(honest, liar, "ranges"), pep658=False).start(),
    }
    projects = {}
    for name, server in servers.items():
        project = root / name
        project.mkdir()
        (project / "pyproject.toml").write_text(
            '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
            'dependencies = ["demo"]\n\n[tool.uv]\npackage = false\n\n'
            f'[[tool.uv.index]]\nname = "idx"\nurl = "{server.index_url("idx")}"\n'
            "default = true\n"
        )
        projects[name] = project
    run_uv("0.13.9", ["lock"], projects["honest"], root / "uv-tmp")
    lock = (projects["honest"] / "uv.lock").read_text()
    assert 'name = "dep"' in lock
    for name, server in servers.items():
        port = servers["honest"].port
        text = lock.replace(f"127.0.0.1:{port}", f"127.0.0.1:{server.port}")
        (projects[name] / "uv.lock").write_text(text)
    yield projects, servers
    for server in servers.values():
        server.stop()


@pytest.mark.parametrize("how", ["pep658", "ranges"])
def test_an_index_cannot_poison_the_metadata_cache_of_another(
    two_indexes, how: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A lying index serves demo's wheel (same sha256) with metadata that drops ``dep``.
    A project on it sees that, but a project on the honest index, sharing the cache, must
    still find its lock right and keep ``dep`` on repair."""
    projects, _ = two_indexes
    cache = tmp_path / "shared-cache"
    lied = _lockfix_shared("check", cwd=projects[how], cache=cache)
    assert lied.returncode == 1 and "extra-dependency" in lied.stdout, lied.output
    honest = projects["honest"]
    before = (honest / "uv.lock").read_text()
    checked = _lockfix_shared("check", cwd=honest, cache=cache)
    assert checked.returncode == 0, checked.output
    repaired = _lockfix_shared("repair", cwd=honest, cache=cache)
    assert repaired.returncode == 0, repaired.output
    assert (honest / "uv.lock").read_text() == before


def test_metadata_proved_by_its_pep658_hash_is_shared_across_indexes(
    two_indexes, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A mirror listing the same PEP 658 hashes is answered from what the first index
    served: the hash proves the bytes, whoever served them."""
    projects, servers = two_indexes
    cache = tmp_path / "shared-cache"
    assert _lockfix_shared("check", cwd=projects["honest"], cache=cache).returncode == 0
    servers["mirror"].reset_log()
    mirrored = _lockfix_shared("check", cwd=projects["mirror"], cache=cache)
    assert mirrored.returncode == 0, mirrored.output
    assert servers["mirror"].page_requests("idx")  # it was asked for its pages
    assert servers["mirror"].metadata_requests("idx") == []
    assert servers["mirror"].file_requests("idx") == []


def _lockfix_shared(command: str, *, cwd: Path, cache: Path) -> Run:
    result = subprocess.run(
        [sys.executable, "-m", "lockfix", command, "uv.lock", "--cache-dir", str(cache)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    return Run((command,), result.returncode, result.stdout, result.stderr, 0.0)
