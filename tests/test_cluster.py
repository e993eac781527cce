"""Builds on a real dask.distributed cluster: the same bytes, time limits, dead workers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import tree_bytes

from competition.config import BuildConfig, PatternConfig
from competition.lattice.build import build_competition
from competition.lattice.cluster import ClusterError, connect, parse_scheduler
from competition.lattice.pipeline import run_pipeline
from competition.lattice.worker import StructureRecord
from competition.sources.catalog import RawEntry, Rejected, cod_dir_source

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of two single-threaded, non-daemonic worker processes."""
    import dask

    # Read whenever a nanny (re)starts a worker, so it holds as long as the cluster.
    with dask.config.set({"distributed.worker.daemon": False}), distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=40,
    ) as local:  # fmt: skip
        yield local


@pytest.mark.parametrize(
    ("text", "expected"),
    [("local:2", ("local", 2)), ("tcp://10.0.0.5:8786", ("address", "tcp://10.0.0.5:8786"))],
)
def test_scheduler_names_parse(text, expected):
    assert parse_scheduler(text) == expected


@pytest.mark.parametrize(("text", "hint"), [
    ("local:0", "positive worker count"), ("local:two", "positive worker count"),
    ("10.0.0.5:8786", "tcp://"),
])  # fmt: skip
def test_bad_scheduler_names_say_what_is_expected(text, hint):
    with pytest.raises(ClusterError, match=hint):
        parse_scheduler(text)


def test_a_build_on_the_cluster_has_the_local_pools_bytes(cluster, cod_cifs, tmp_path):
    source = lambda: cod_dir_source(cod_cifs).head(60)  # noqa: E731
    config = BuildConfig(seed=3)
    build_competition(source(), tmp_path / "pool", config, workers=2, progress=False)
    summary = build_competition(
        source(), tmp_path / "dask", config, scheduler=cluster.scheduler_address,
        cache_dir=tmp_path / "cache", progress=False,
    )  # fmt: skip
    assert summary.n_accepted > 40
    assert tree_bytes(tmp_path / "dask") == tree_bytes(tmp_path / "pool")
    # Resume from the cache the cluster filled: nothing is recomputed.
    again = build_competition(
        source(), tmp_path / "again", config, scheduler=cluster.scheduler_address,
        cache_dir=tmp_path / "cache", progress=False,
    )  # fmt: skip
    assert again.n_cached == 60
    assert tree_bytes(tmp_path / "again") == tree_bytes(tmp_path / "pool")


def test_a_structure_past_its_time_limit_is_rejected_on_the_cluster(cluster, edge_cases, cod_cifs):
    # pymatgen's engine with reflections out to 150 deg: about 3 s for 1,504 sites.
    config = BuildConfig(
        max_sites=5000, timeout=1.0, engine="pymatgen", preset="custom",
        pattern=PatternConfig(two_theta_min=5.0, two_theta_max=150.0, step=0.02, fwhm=0.1),
    )  # fmt: skip
    entries = [
        RawEntry("file:big", None, "big", (edge_cases / "1004001.cif").read_text("latin-1")),
        RawEntry("file:small", None, "small", (cod_cifs / "1000027.cif").read_text("latin-1")),
    ]
    results, _ = run_pipeline(
        entries, config, scheduler=cluster.scheduler_address, progress=False
    )
    by_id = {r.entry_id: r for r in results}
    assert isinstance(by_id["file:big"], Rejected) and by_id["file:big"].stage == "timeout"
    assert "--timeout" in by_id["file:big"].reason
    assert isinstance(by_id["file:small"], StructureRecord)


def test_a_worker_killed_mid_build_loses_no_structure(cluster, cod_cifs):
    entries = [e for e in cod_dir_source(cod_cifs).head(80).entries() if isinstance(e, RawEntry)]
    config = BuildConfig()
    expected, _ = run_pipeline(entries, config, workers=2, progress=False)

    with distributed.Client(cluster.scheduler_address) as client:
        victim = next(iter(client.run(os.getpid).values()))

    def killing(items):
        for i, entry in enumerate(items):
            if i == 20:  # structures are in flight on both workers by now
                os.kill(victim, signal.SIGKILL)
            yield entry

    results, _ = run_pipeline(
        killing(entries), config, scheduler=cluster.scheduler_address, progress=False
    )
    with distributed.Client(cluster.scheduler_address) as client:
        assert victim not in client.run(os.getpid).values()  # it really died
    assert [r.entry_id for r in results] == [r.entry_id for r in expected]
    for got, want in zip(results, expected, strict=True):
        assert type(got) is type(want)
        if isinstance(want, StructureRecord):
            assert got.bravais_lattice == want.bravais_lattice
            np.testing.assert_array_equal(got.pattern, want.pattern)
        else:
            assert (got.stage, got.reason) == (want.stage, want.reason)


def test_daemonic_workers_are_refused_with_how_to_start_them():
    import dask

    with dask.config.set({"distributed.worker.daemon": True}):  # dask's default
        daemonic = distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
            silence_logs=40,
        )  # fmt: skip
    hint = "DASK_DISTRIBUTED__WORKER__DAEMON=False"
    with daemonic, pytest.raises(ClusterError, match=hint), connect(daemonic.scheduler_address):
        pass


def test_an_unreachable_scheduler_is_a_clear_error():
    message = re.escape("cannot reach the dask scheduler at tcp://127.0.0.1:9")
    with pytest.raises(ClusterError, match=message), connect("tcp://127.0.0.1:9", timeout=2):
        pass


def test_the_cli_builds_on_a_local_cluster(cod_cifs, tmp_path):
    command = [
        sys.executable, "-m", "xrd_bravais", "build", "--source", "cod-dir",
        "--input", str(cod_cifs), "--limit", "60", "--quiet", "--no-cache",
    ]
    local = subprocess.run([*command, "--out", str(tmp_path / "pool")],
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert local.returncode == 0, local.stderr
    dask = subprocess.run([*command, "--out", str(tmp_path / "dask"), "--scheduler", "local:2"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert dask.returncode == 0, dask.stderr
    assert tree_bytes(tmp_path / "dask") == tree_bytes(tmp_path / "pool")


def test_the_cli_refuses_workers_with_a_scheduler(cod_cifs, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "xrd_bravais", "build", "--source", "cod-dir", "--input",
         str(cod_cifs), "--out", str(tmp_path / "x"), "--scheduler", "local:2", "--workers", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    assert "--workers" in result.stderr and "--scheduler" in result.stderr
    assert not (tmp_path / "x").exists()
