"""The surfaces a demanding organiser, a student and a student looking for a way in try.

Each test is one finding of a red-team pass (issue 33), kept so the next surface added
is tried the same way: through the command line as a subprocess, or a real server on
127.0.0.1. Bounded: no test writes more than a few MB or waits on the network.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from test_cli import run

from xrd_bravais.contract import layout
from xrd_bravais.contract.io import OutputError, check_output, protected_part


@pytest.fixture
def comp(cod_build, tmp_path) -> Path:
    """A private copy of the real COD build with one stored submission."""
    root = Path(shutil.copytree(cod_build.out, tmp_path / "comp"))
    sample = root / layout.sample_submission("bravais")
    assert run("submit", str(sample), "--team", "alpha", "-c", str(root),
               cwd=tmp_path).returncode == 0  # fmt: skip
    return root


def _one_line_error(done) -> str:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


# ---------------------------------------------------------------- outputs never overwrite
def test_check_output_refuses_protected_paths_even_with_force(cod_build, tmp_path) -> None:
    root = cod_build.out
    for target in (root / layout.SOLUTION, root / layout.LEADERBOARD_DB, root / layout.MANIFEST,
                   root / "private" / "new.zip", root / "leaderboard" / "x.csv"):  # fmt: skip
        assert protected_part(target) is not None, target
        with pytest.raises(OutputError, match="answer key, submissions or manifest"):
            check_output(target, force=True)
    link = tmp_path / "innocent.zip"
    link.symlink_to(root / layout.SOLUTION)
    with pytest.raises(OutputError, match="inside"):
        check_output(link, force=True)
    assert protected_part(root / "kit.zip") is None
    existing = tmp_path / "kit.zip"
    existing.write_bytes(b"mine")
    with pytest.raises(OutputError, match="--force"):
        check_output(existing)
    assert check_output(existing, force=True) == existing


@pytest.mark.parametrize(
    ("command", "target"),
    [
        (("export", "codabench"), layout.SOLUTION),
        (("export", "codabench"), layout.LEADERBOARD_DB),
        (("starter-kit",), layout.MANIFEST),
        (("leaderboard",), layout.SOLUTION),
    ],
)
def test_no_command_writes_over_the_key_the_store_or_the_manifest(
    comp, tmp_path, command, target
) -> None:
    before = (comp / target).read_bytes()
    done = run(*command, "-c", str(comp), "--out", str(comp / target), "--force", cwd=tmp_path)
    assert "answer key, submissions or manifest" in _one_line_error(done)
    assert (comp / target).read_bytes() == before


def test_an_existing_output_is_kept_unless_force_is_given(comp, tmp_path) -> None:
    mine = tmp_path / "board.md"
    mine.write_text("my notes")
    done = run("leaderboard", "-c", str(comp), "--out", str(mine), "-f", "md", cwd=tmp_path)
    assert "--force" in _one_line_error(done) and mine.read_text() == "my notes"
    done = run("leaderboard", "-c", str(comp), "--out", str(mine), "-f", "md", "--force",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0 and "alpha" in mine.read_text()
    kit = tmp_path / "kit.zip"
    kit.write_bytes(b"an older kit")
    done = run("starter-kit", "-c", str(comp), "--out", str(kit), cwd=tmp_path)
    assert "exists" in _one_line_error(done) and kit.read_bytes() == b"an older kit"


def test_building_into_a_competitions_private_folder_is_refused(comp, tmp_path) -> None:
    done = run("build", "--out", str(comp / "private" / "again"), "--source", "generated",
               "--n-generated", "20", cwd=tmp_path)  # fmt: skip
    assert "refusing to build" in _one_line_error(done)
    assert not (comp / "private" / "again").exists()


# ---------------------------------------------------------------- hidden material is owner-only
def test_the_codabench_bundle_and_its_reference_data_are_owner_only(cod_build, tmp_path) -> None:
    from xrd_bravais.platforms.codabench import export_codabench

    # The running Python's pyarrow stands in for the image's: no download in a test.
    bundle = export_codabench(cod_build.out, tmp_path / "bundle.zip", python_version="3.11",
                              wheelhouse=None, pyarrow_version=_installed_pyarrow())  # fmt: skip
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    modes = {i.filename: (i.external_attr >> 16) & 0o777
             for i in zipfile.ZipFile(bundle).infolist()}  # fmt: skip
    hidden = [n for n in modes if n.startswith("reference_data/")]
    assert hidden and all(modes[n] == 0o600 for n in hidden)
    assert modes["public_data/test.parquet"] == 0o644


def _installed_pyarrow() -> str:
    from importlib.metadata import version

    return version("pyarrow")


def test_the_admin_export_is_owner_only_and_keeps_removed_teams(site) -> None:
    import httpx

    token = site.token("gone")
    sample = (site.competition / layout.sample_submission("bravais")).read_bytes()
    sent = httpx.post(f"{site.url}/api/v1/submissions",
                      headers={"Authorization": f"Bearer {token}"},
                      files={"file": ("s.csv", sample, "text/csv")}, timeout=60)  # fmt: skip
    assert sent.status_code == 201
    site.cli("teams", "remove", "gone")
    admin = site.cli("teams", "admin").strip().rsplit(" ", 1)[-1]
    export = httpx.get(f"{site.url}/api/v1/admin/export",
                       headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    archive = zipfile.ZipFile(io.BytesIO(export.content))
    assert all((i.external_attr >> 16) & 0o777 == 0o600 for i in archive.infolist())
    table = archive.read(next(n for n in archive.namelist() if n.endswith("_bravais.csv")))
    rows = pd.read_csv(io.BytesIO(table))
    assert rows.set_index("team").loc["gone", "removed"] == 1


# ---------------------------------------------------------------- denial of service
def test_every_request_body_is_capped_before_it_is_read(site) -> None:
    import httpx

    token = site.token("alpha")
    big = b"[" + b"1," * (8 * 2**20) + b"1]"  # 16 MB of JSON: far over any form's size
    for method, path, headers in (
        ("PUT", "/api/v1/selection", {"Authorization": f"Bearer {token}"}),
        ("PUT", "/api/v1/selection", {}),
        ("POST", "/login", {}),
        ("POST", "/admin/close", {}),
    ):
        answer = httpx.request(method, f"{site.url}{path}", content=big,
                               headers={**headers, "content-type": "application/json"},
                               timeout=60)  # fmt: skip
        assert answer.status_code == 413, (path, answer.status_code)
    # Chunked, with no Content-Length to refuse it by: cut off while reading.
    def chunks():
        for _ in range(64):
            yield b"x" * 2**18

    answer = httpx.post(f"{site.url}/login", content=chunks(), timeout=60)
    assert answer.status_code == 413


def _raw_post(site, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """Send a request by hand (a client library would refuse the lie in its headers)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(site.url)
    head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": url.netloc, **headers}.items())
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_an_upload_is_refused_before_its_body_is_read_without_a_team(site) -> None:
    # A gigabyte declared, a kilobyte sent: the answer comes before the rest would be read.
    answer = _raw_post(site, "/api/v1/submissions",
                       {"Content-Length": str(2**30), "Content-Type": "text/csv"},
                       b"x" * 1024)  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    team = site.token("alpha")
    answer = _raw_post(site, "/api/v1/submissions",
                       {"Content-Length": str(2**30), "Authorization": f"Bearer {team}"},
                       b"x" * 1024)  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


@pytest.mark.parametrize("path", ["/api/v1/submissions/99999999999999999999",
                                  "/team/submissions/99999999999999999999"])  # fmt: skip
def test_an_id_beyond_sqlites_integers_is_not_found(site, path) -> None:
    import httpx

    token = site.token("alpha")
    client = httpx.Client(base_url=site.url, follow_redirects=False)
    if path.startswith("/team"):
        page = client.get("/login")
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        client.post("/login", data={"token": token, "csrf_token": csrf})
    answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 404, answer.text


# ---------------------------------------------------------------- one line, never a traceback
def _as_a_stranger() -> list[str]:
    """A prefix that runs a command as a user who owns nothing here (skip if impossible)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot act as another user")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def foreign_comp(comp, tmp_path_factory) -> Path:
    """The competition, readable by everyone, writable by its owner only."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="xb-foreign-", dir="/tmp"))
    target = Path(shutil.copytree(comp, base / "comp"))
    for path in [base, *target.rglob("*"), target]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    if os.geteuid() != 0:
        for path in [*target.rglob("*"), target]:
            path.chmod(0o555 if path.is_dir() else 0o444)
    yield target
    for path in [*target.rglob("*"), target]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(base)


@pytest.mark.parametrize(
    "args",
    [
        ("teams", "add", "beta"),
        ("leaderboard",),
        ("submit", "SAMPLE", "--team", "beta"),
        ("serve", "--port", "1"),
    ],
)
def test_a_user_who_cannot_write_the_competition_gets_one_line(foreign_comp, args) -> None:
    import subprocess

    from test_cli import EXE

    sample = str(foreign_comp / layout.sample_submission("bravais"))
    argv = [a if a != "SAMPLE" else sample for a in args]
    env = {**os.environ, "HOME": "/tmp", "MPLCONFIGDIR": "/tmp"}
    done = subprocess.run([*_as_a_stranger(), str(EXE), *argv, "-c", str(foreign_comp)],
                          capture_output=True, text=True, cwd="/tmp", env=env,
                          timeout=300)  # fmt: skip
    line = _one_line_error(done)
    assert "permission denied" in line, line


def test_serving_a_damaged_store_or_a_copy_of_public_is_one_line(comp, tmp_path) -> None:
    store = comp / layout.LEADERBOARD_DB
    store.write_bytes(b"this is not a database" * 100)
    for name in ("-wal", "-shm"):
        Path(f"{store}{name}").unlink(missing_ok=True)
    line = _one_line_error(run("serve", "-c", str(comp), "--port", "1", cwd=tmp_path))
    assert "not a readable leaderboard" in line
    public_copy = tmp_path / "students"
    shutil.copytree(comp / "public", public_copy / "public")
    shutil.copy(comp / layout.MANIFEST, public_copy / layout.MANIFEST)
    line = _one_line_error(run("serve", "-c", str(public_copy), "--port", "1", cwd=tmp_path))
    assert "has no private/solution.csv" in line


@pytest.mark.parametrize(
    ("scheduler", "reason"),
    [
        ("http://127.0.0.1:8787", "like that of the dask dashboard"),
        ("tcp://", "scheduler address such as"),
        ("ftp://x", "scheduler address such as"),
        ("local:\u00b2", "positive worker count of at most"),
        ("local:100000", "positive worker count of at most"),
    ],
)
def test_a_bad_scheduler_is_one_line(tmp_path, scheduler, reason) -> None:
    done = run("build", "--out", str(tmp_path / "out"), "--source", "generated",
               "--n-generated", "10", "--scheduler", scheduler, cwd=tmp_path)  # fmt: skip
    assert reason in _one_line_error(done)


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("--photons", "nan", "finite"),
        ("--photons", "inf", "finite"),
        ("--radius", "1e-9", "a smaller particle draws nothing"),
    ],
)
def test_aggregate_settings_that_draw_nothing_are_refused(tmp_path, option, value, reason):
    done = run("build", "--task", "aggregates", "--out", str(tmp_path / "agg"), option, value,
               "--per-count", "4", cwd=tmp_path)  # fmt: skip
    assert reason in _one_line_error(done)
    assert not (tmp_path / "agg" / layout.MANIFEST).exists()


def test_export_codabench_with_a_bad_python_is_one_line(cod_build, tmp_path) -> None:
    done = run("export", "codabench", "-c", str(cod_build.out), "--out",
               str(tmp_path / "b.zip"), "--python", "abc", cwd=tmp_path)  # fmt: skip
    assert "not a Python version" in _one_line_error(done)


def test_export_codabench_says_before_downloading_and_fails_in_one_line_offline(
    cod_build, tmp_path
) -> None:
    from conftest import free_port

    # pip's own configuration is set aside and its index is a port nobody listens on.
    env = {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": f"http://127.0.0.1:{free_port()}/",
           "PIP_FIND_LINKS": "", "PIP_NO_CACHE_DIR": "1",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}  # fmt: skip
    done = run("export", "codabench", "-c", str(cod_build.out), "--out", str(tmp_path / "b.zip"),
               "--python", "3.10", cwd=tmp_path, env=env)  # fmt: skip
    assert "Downloading the pyarrow" in done.stdout and "--wheelhouse" in done.stdout
    line = _one_line_error(done)
    assert "could not download pyarrow" in line and "--wheelhouse WHEELS" in line
    assert not (tmp_path / "b.zip").exists()


def test_a_codabench_submission_named_in_capitals_is_found(tmp_path) -> None:
    from xrd_bravais.platforms.codabench_score import find_submission

    res = tmp_path / "res"
    res.mkdir()
    (res / "SUB.CSV").write_text("id,bravais_lattice\n")
    assert find_submission(res).name == "SUB.CSV"


def test_a_kit_refused_by_its_leak_check_tells_the_organisers_why(site) -> None:
    import httpx

    key = pd.read_csv(site.competition / layout.SOLUTION)
    key[["id", "bravais_lattice"]].to_csv(site.competition / "public" / "answers.csv", index=False)
    anonymous = httpx.get(f"{site.url}/starter-kit.zip")
    assert anonymous.status_code == 503 and "not available" in anonymous.text
    assert "answers.csv" not in anonymous.text and "Traceback" not in anonymous.text
    admin = site.cli("teams", "admin").strip().rsplit(" ", 1)[-1]
    client = httpx.Client(base_url=site.url)
    page = client.get("/login")
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"token": admin, "csrf_token": csrf})
    refused = client.get("/starter-kit.zip")
    assert refused.status_code == 503 and "public/answers.csv" in refused.text
