"""The per-structure pipeline: time limit, cache and ordering, on real structures."""

from __future__ import annotations

from competition.config import BuildConfig, PatternConfig
from competition.lattice.pipeline import run_pipeline
from competition.lattice.worker import StructureRecord, process_entry
from competition.sources.catalog import RawEntry, Rejected


def _entry(path, name=None) -> RawEntry:
    return RawEntry(
        f"file:{name or path.name}", None, str(path), path.read_text(encoding="latin-1")
    )


# 1004001.cif has 1,504 sites: with pymatgen's engine and reflections out to 150 deg its
# pattern takes about 3 s on one core (the vectorised engine needs 0.05 s).
SLOW = BuildConfig(
    max_sites=5000, timeout=1.0, engine="pymatgen", preset="custom",
    pattern=PatternConfig(two_theta_min=5.0, two_theta_max=150.0, step=0.02, fwhm=0.1),
)  # fmt: skip


def test_a_structure_past_its_time_limit_is_killed_and_the_rest_goes_on(edge_cases, cod_cifs):
    big = _entry(edge_cases / "1004001.cif")
    small = _entry(cod_cifs / "1000027.cif")
    config = SLOW
    results, n_cached = run_pipeline([big, small], config, workers=2, progress=False)
    by_id = {r.entry_id: r for r in results}
    assert isinstance(by_id[big.entry_id], Rejected)
    assert by_id[big.entry_id].stage == "timeout"
    assert "--timeout" in by_id[big.entry_id].reason
    assert isinstance(by_id[small.entry_id], StructureRecord)
    assert n_cached == 0


def test_timeouts_are_not_cached_but_results_are(edge_cases, cod_cifs, tmp_path):
    big = _entry(edge_cases / "1004001.cif")
    small = _entry(cod_cifs / "1000027.cif")
    config = SLOW
    cache = tmp_path / "results.sqlite"
    run_pipeline([big, small], config, workers=1, cache_path=cache, progress=False)
    _, n_cached = run_pipeline([big, small], config, workers=1, cache_path=cache, progress=False)
    assert n_cached == 1


def test_results_come_back_sorted_whatever_finishes_first(cod_cifs):
    entries = [_entry(p) for p in sorted(cod_cifs.glob("*.cif"))[:12]][::-1]
    results, _ = run_pipeline(entries, BuildConfig(), workers=2, progress=False)
    assert [r.entry_id for r in results] == sorted(e.entry_id for e in entries)


def test_process_entry_reports_stage_timings(cod_cifs):
    record = process_entry(_entry(cod_cifs / "1000027.cif"), BuildConfig())
    assert isinstance(record, StructureRecord)
    assert set(record.seconds) == {"parse", "symmetry", "pattern"}
    assert record.spacegroup_number == 63 and record.bravais_lattice == "oS"
    assert record.pattern.shape == (4251,)


def test_early_rejections_pass_through(cod_cifs):
    early = Rejected("cod:1234567", "http://x/1234567.cif", "download", "download failed: HTTP 404")
    results, _ = run_pipeline([early], BuildConfig(), workers=1, progress=False)
    assert results == [early]


def test_workers_keep_library_warnings_off_the_terminal():
    """Issue 10, item 19: per-structure library warnings reached the organiser's terminal."""
    import subprocess
    import sys

    code = (
        "import warnings\n"
        "from competition.lattice.worker import init_worker\n"
        "init_worker()\n"
        "warnings.warn('No Pauling electronegativity for Ne. Setting to NaN.')\n"
        "print('done')\n"
    )
    done = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr
    assert done.stderr == ""


def _hammer(args):  # runs in a separate process
    from competition.lattice.cache import ResultCache

    path, worker = args
    with ResultCache(path) as cache:
        for i in range(150):
            cache.get(f"{(worker + 1) % 4}-{i}")  # read what another process writes
            cache.put(f"{worker}-{i}", {"i": i, "blob": b"x" * 2000})
    return worker


def test_processes_share_a_fresh_cache_without_lock_errors(tmp_path):
    """Issue 10, item 3: concurrent builds died with 'database is locked'."""
    import multiprocessing

    from competition.lattice.cache import ResultCache

    path = tmp_path / "results.sqlite"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert sorted(pool.map(_hammer, [(path, k) for k in range(4)])) == [0, 1, 2, 3]
    with ResultCache(path) as cache:
        assert len(cache) == 600 and cache.get("3-149")["i"] == 149
    assert path.stat().st_mode & 0o077 == 0


def test_a_spool_takes_every_pattern_as_it_arrives_fresh_or_cached(cod_cifs, tmp_path):
    import numpy as np

    from competition.lattice.spool import PatternSpool

    entries = [_entry(p) for p in sorted(cod_cifs.glob("*.cif"))[:8]]
    config = BuildConfig()
    cache = tmp_path / "results.sqlite"
    full, _ = run_pipeline(entries, config, workers=1, progress=False)
    records = {r.entry_id: r for r in full if isinstance(r, StructureRecord)}
    for round_ in ("fresh", "cached"):
        with PatternSpool(config.pattern.n_points) as spool:
            light, n_cached = run_pipeline(entries, config, workers=1, cache_path=cache,
                                           progress=False, spool=spool)  # fmt: skip
            assert n_cached == (len(entries) if round_ == "cached" else 0)
            kept = [r for r in light if isinstance(r, StructureRecord)]
            assert kept and all(r.pattern is None and r.sticks is None for r in kept)
            assert len(spool) == len(kept) == len(records)
            for record in kept:
                original = records[record.entry_id]
                np.testing.assert_array_equal(spool[record.entry_id], original.pattern)
                np.testing.assert_array_equal(spool.sticks(record.entry_id), original.sticks)
                assert record.spacegroup_number == original.spacegroup_number
