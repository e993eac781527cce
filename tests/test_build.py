"""A real build on cod_cifs: layout, leakage, manifest, determinism, resume, edge cases."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import tree_bytes

from competition.config import BuildConfig
from competition.lattice.build import BuildError, build_competition
from competition.manifest import read_manifest, verify_manifest
from competition.sources.catalog import cod_dir_source
from xrd_bravais.contract.labels import BRAVAIS_LATTICES

LAYOUT = [
    "manifest.json",
    "public/train.parquet", "public/train_sticks.parquet", "public/train_meta.parquet",
    "public/test.parquet", "public/sample_submission.csv",
    "public/sample_submission_spacegroup.csv", "public/DATA.md", "public/overview.png",
    "private/solution.csv", "private/test_meta.parquet",
    "reports/rejects.csv", "reports/overview.png", "reports/outliers.csv",
    "reports/outliers.png",
]  # fmt: skip


def _load(out: Path):
    train = pd.read_parquet(out / "public" / "train.parquet")
    test = pd.read_parquet(out / "public" / "test.parquet")
    solution = pd.read_csv(out / "private" / "solution.csv")
    meta = pd.read_parquet(out / "private" / "test_meta.parquet")
    return train, test, solution, meta


def test_layout_is_complete(cod_build):
    out = cod_build.out
    assert sorted(tree_bytes(out)) == sorted(LAYOUT)
    assert not list(out.rglob("*.tmp")), "temporary files left behind"
    # Written through temporary files, yet readable like any file the umask allows.
    umask = os.umask(0o022)
    os.umask(umask)
    for path in (out / "public").iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def _accounted(out: Path) -> tuple[set[str], pd.DataFrame]:
    """Entry ids in the dataset, and rejects.csv."""
    used = set()
    for name in ["public/train_meta.parquet", "private/test_meta.parquet"]:
        used |= set(pd.read_parquet(out / name)["entry_id"])
    return used, pd.read_csv(out / "reports" / "rejects.csv", keep_default_na=False)


def test_every_input_is_in_the_dataset_or_in_rejects(cod_build, cod_cifs):
    used, rejects = _accounted(cod_build.out)
    every = {f"file:{p.name}" for p in cod_cifs.glob("*.cif")}
    assert used | set(rejects["entry_id"]) == every
    assert not used & set(rejects["entry_id"])
    assert (rejects["reason"].str.len() > 0).all()
    assert set(rejects["stage"]) <= {"parse", "symmetry", "pattern", "dedup", "balance",
                                     "near-copy"}  # fmt: skip
    dropped = rejects[rejects["stage"] == "dedup"]
    assert set(dropped["kept_id"]) <= used
    # A near-copy names the test entry it copies, which is in the test set.
    copies = rejects[rejects["stage"] == "near-copy"]
    test_entries = set(pd.read_parquet(cod_build.out / "private" / "test_meta.parquet")["entry_id"])
    assert set(copies["kept_id"]) <= test_entries
    assert copies["reason"].str.contains("cosine").all()


def test_schema_and_grid_metadata(cod_build):
    out = cod_build.out
    train = pq.read_table(out / "public" / "train.parquet")
    assert train.schema.names[:5] == [
        "id",
        "cod_id",
        "formula",
        "spacegroup_number",
        "bravais_lattice",
    ]
    assert train.schema.names[5:] == [f"y{i}" for i in range(4251)]
    assert str(train.schema.field("y0").type) == "float"
    assert b"xrd_bravais.grid" in train.schema.metadata
    manifest = read_manifest(out)
    assert manifest["grid"]["n_points"] == 4251
    assert manifest["labels"]["symprec"] == 0.01
    patterns = train.select([f"y{i}" for i in range(4251)]).to_pandas().to_numpy()
    assert np.allclose(patterns.max(axis=1), 1.0) and patterns.min() >= 0
    assert set(train.column("bravais_lattice").to_pylist()) <= set(BRAVAIS_LATTICES)


def test_public_files_hide_test_labels(cod_build):
    out = cod_build.out
    test = pq.read_table(out / "public" / "test.parquet")
    assert test.schema.names == ["id"] + [f"y{i}" for i in range(4251)]
    for name in ["sample_submission.csv", "sample_submission_spacegroup.csv"]:
        sample = pd.read_csv(out / "public" / name)
        assert sample.shape[1] == 2 and sample.iloc[:, 1].nunique() == 1
        assert list(sample["id"]) == test.column("id").to_pylist()
    card = (out / "public" / "DATA.md").read_text()
    assert "Private" not in card and "private" not in card.lower().replace("private one", "")


def test_no_compound_in_both_train_and_test(cod_build):
    train, _, solution, meta = _load(cod_build.out)
    test = meta.merge(solution, on="id", validate="one_to_one")

    def groups(frame: pd.DataFrame) -> set[tuple[str, int]]:
        return set(zip(frame["formula"], frame["spacegroup_number"], strict=True))

    assert not groups(train) & groups(test)
    assert not groups(test[test["Usage"] == "Public"]) & groups(test[test["Usage"] == "Private"])


def test_split_fractions(cod_build):
    """Each lattice's share, except that a scarce one gets 10 rows a board where it can."""
    train, _, solution, _ = _load(cod_build.out)
    n_train = train["bravais_lattice"].value_counts()
    public = solution[solution["Usage"] == "Public"]["bravais_lattice"].value_counts()
    private = solution[solution["Usage"] == "Private"]["bravais_lattice"].value_counts()
    plain = 0
    for lattice in BRAVAIS_LATTICES:
        n_public, n_private = public.get(lattice, 0), private.get(lattice, 0)
        n_test = n_public + n_private
        n = n_test + n_train.get(lattice, 0)
        # Plain shares (whole compounds, so about) where they give enough rows.
        if round(0.2 * n) >= 20:
            plain += 1
            assert n_test / n == pytest.approx(0.2, abs=0.03), lattice
        else:  # topped up to 20, never beyond half the lattice
            assert min(20, n // 2) - 2 <= n_test <= max(20, n // 2) + 2, lattice
        if round(0.3 * n_test) >= 10:
            assert n_public / n_test == pytest.approx(0.3, abs=0.06), lattice
        else:
            assert min(n_public, n_private) >= min(10, n_test // 2) - 2, lattice
    assert plain >= 1  # hP: 226 structures


def test_the_data_card_names_the_lattices_short_of_the_minimum_and_no_counts(cod_build):
    solution = pd.read_csv(cod_build.out / "private" / "solution.csv")
    card = " ".join((cod_build.out / "public" / "DATA.md").read_text().split())
    assert "at least 10 rows on each of the two leaderboards" in card
    fewest = solution.groupby("Usage")["bravais_lattice"].value_counts().unstack(0).fillna(0)
    fewest = fewest.reindex(BRAVAIS_LATTICES).fillna(0).min(axis=1)
    short = [lattice for lattice in BRAVAIS_LATTICES if fewest[lattice] < 10]
    assert short, "cod_cifs is small: some lattice must fall short"
    assert f"the source had too few for {', '.join(short)}:" in card


def test_ids_and_row_order_carry_no_information(cod_build):
    train, test, solution, meta = _load(cod_build.out)
    assert list(test["id"]) == sorted(test["id"]) == list(solution["id"])
    rows = meta.merge(solution, on="id")
    position = np.arange(len(rows))
    # Source order (COD id) and id order are unrelated.
    cod_rank = rows["cod_id"].rank().to_numpy()
    assert abs(np.corrcoef(position, cod_rank)[0, 1]) < 0.3
    # Labels are not grouped in id order: about as many label changes between
    # neighbours as in a random order (expected 1 - sum p_k^2 of them).
    labels = rows["bravais_lattice"].to_numpy()
    changes = np.mean(labels[1:] != labels[:-1])
    p = rows["bravais_lattice"].value_counts(normalize=True).to_numpy()
    assert changes > 0.6 * (1 - (p**2).sum())
    assert len(set(train["id"]) & set(test["id"])) == 0


def test_manifest_hashes_verify_and_catch_tampering(cod_build, tmp_path):
    assert verify_manifest(cod_build.out) == []
    copy = tmp_path / "copy"
    shutil.copytree(cod_build.out, copy)
    with open(copy / "private" / "solution.csv", "a") as handle:
        handle.write("t999999,cF,225,Public\n")
    (copy / "public" / "DATA.md").unlink()
    (copy / "public" / "extra.csv").write_text("x")
    problems = verify_manifest(copy)
    assert any(p.startswith("changed: private/solution.csv") for p in problems)
    assert "missing: public/DATA.md" in problems
    assert "not in manifest: public/extra.csv" in problems


def test_manifest_counts_match_files(cod_build):
    train, _, solution, _ = _load(cod_build.out)
    counts = read_manifest(cod_build.out)["counts"]["per_portion"]
    assert sum(counts["train"].values()) == len(train)
    assert counts["train"] == {
        k: int((train["bravais_lattice"] == k).sum()) for k in BRAVAIS_LATTICES
    }
    public = solution[solution["Usage"] == "Public"]
    assert counts["public"] == {
        k: int((public["bravais_lattice"] == k).sum()) for k in BRAVAIS_LATTICES
    }


def test_label_agreement_on_real_files(cod_build):
    """Spglib at the default symprec=0.01 against the declared space groups (docs/labels.md)."""
    agreement = cod_build.label_agreement
    assert agreement["n_declared"] >= 500
    assert agreement["spacegroup_agreement"] >= 0.955  # measured 0.963 on 517 parseable
    assert agreement["lattice_agreement"] >= 0.97  # measured 0.979


def test_same_inputs_same_bytes_with_and_without_cache(cod_cifs, tmp_path):
    source = lambda: cod_dir_source(cod_cifs).head(60)  # noqa: E731
    config = BuildConfig(seed=7)
    build_competition(
        source(), tmp_path / "a", config, workers=2, cache_dir=tmp_path / "c", progress=False
    )
    build_competition(source(), tmp_path / "b", config, workers=1, cache_dir=None, progress=False)
    build_competition(
        source(), tmp_path / "c2", config, workers=2, cache_dir=tmp_path / "c", progress=False
    )
    a, b, c = (tree_bytes(tmp_path / n) for n in ["a", "b", "c2"])
    assert a == b == c
    other = build_competition(source(), tmp_path / "d", config.with_(seed=8), workers=2,
                              cache_dir=tmp_path / "c", progress=False)  # fmt: skip
    assert tree_bytes(other.out)["private/solution.csv"] != a["private/solution.csv"]


def test_a_rebuild_that_fails_while_writing_leaves_no_manifest(cod_cifs, tmp_path):
    """The earlier manifest must not vouch for a half-rewritten folder."""
    out = tmp_path / "out"
    source = cod_dir_source(cod_cifs).head(40)
    build_competition(source, out, workers=2, cache_dir=tmp_path / "c", progress=False)
    assert verify_manifest(out) == []
    (out / "public" / "DATA.md").unlink()
    (out / "public" / "DATA.md").mkdir()  # a real obstacle: the rename onto it fails
    with pytest.raises(OSError):
        build_competition(source, out, workers=2, cache_dir=tmp_path / "c", progress=False)
    assert not (out / "manifest.json").exists()
    assert not list(out.rglob(".*.tmp")), "temporary files left behind"
    with pytest.raises(FileNotFoundError, match="not a built competition"):
        verify_manifest(out)


@pytest.mark.parametrize("earlier", [False, True])
def test_ctrl_c_while_writing_leaves_a_folder_the_same_command_resumes(
    cod_cifs, tmp_path, monkeypatch, earlier
):
    """Interrupted after the data files, before the manifest: a rerun finishes the build."""
    import competition.manifest

    out = tmp_path / "out"
    source = cod_dir_source(cod_cifs).head(40)
    if earlier:
        build_competition(source, out, workers=2, cache_dir=tmp_path / "c", progress=False)
    real = competition.manifest.write_manifest

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(competition.manifest, "write_manifest", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_competition(source, out, workers=2, cache_dir=tmp_path / "c", progress=False)
    assert (out / "public" / "train.parquet").is_file() and not (out / "manifest.json").exists()
    monkeypatch.setattr(competition.manifest, "write_manifest", real)
    # The same command again, no --force: it recognises its own unfinished build.
    build_competition(source, out, workers=2, cache_dir=tmp_path / "c", progress=False)
    assert verify_manifest(out) == []
    assert not (out / ".unfinished-build").exists()


def test_a_rebuild_that_fails_before_writing_keeps_the_earlier_build(cod_cifs, tmp_path):
    out = tmp_path / "out"
    build_competition(
        cod_dir_source(cod_cifs).head(40), out, workers=2, cache_dir=None, progress=False
    )
    before = tree_bytes(out)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.cif").write_text("not a cif")
    with pytest.raises(BuildError, match="no structure was accepted"):
        build_competition(cod_dir_source(broken), out, workers=1, progress=False)
    assert tree_bytes(out) == before and verify_manifest(out) == []


def test_refuses_to_overwrite_a_folder_that_is_not_a_build(cod_cifs, tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(BuildError, match="not empty"):
        build_competition(cod_dir_source(cod_cifs).head(5), tmp_path, progress=False)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_resume_after_a_killed_build(cod_build, cod_cifs, tmp_path):
    """Kill a build mid-way; the rerun reuses what was cached and gives the same bytes."""
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "xrd_bravais", "build", "--source", "cod-dir",
        "--input", str(cod_cifs), "--out", str(out), "--cache-dir", str(cache),
        "--workers", "2", "--quiet",
    ]  # fmt: skip
    process = subprocess.Popen(command, start_new_session=True)
    database = cache / "results.sqlite"
    deadline = time.monotonic() + 120
    cached = 0
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
        if database.exists():
            try:
                with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as con:
                    cached = con.execute("SELECT count(*) FROM results").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if cached >= 100:
                break
    assert process.poll() is None, "the build finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "manifest.json").exists()
    assert 100 <= cached < 526

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    reused = int(re.search(r"\((\d+) results from the cache\)", rerun.stdout).group(1))
    assert reused >= 100
    # Same config, source and seed as the clean build: the very same bytes.
    assert tree_bytes(out) == tree_bytes(cod_build.out)


def test_edge_cases_end_in_dataset_or_rejects(edge_cases, tmp_path):
    """All 537 edge-case files: none lost, no crash, no hang (each has a time limit)."""
    summary = build_competition(
        cod_dir_source(edge_cases), tmp_path / "out", BuildConfig(timeout=60),
        workers=2, cache_dir=None, progress=False,
    )  # fmt: skip
    used, rejects = _accounted(summary.out)
    files = {f"file:{p.name}" for p in edge_cases.glob("*.cif")}
    whole = rejects[~rejects["entry_id"].str.contains("#")]
    assert used | set(whole["entry_id"]) == files
    assert not used & set(whole["entry_id"])
    # Unused extra data blocks name the file whose first block was accepted (it may
    # then have been dropped as a repeat of another file).
    blocks = rejects[rejects["entry_id"].str.contains("#")]
    accepted = used | set(rejects.loc[rejects["stage"] == "dedup", "entry_id"])
    assert set(blocks["kept_id"]) <= accepted
    assert len(blocks) >= 10
    assert (rejects["reason"].str.len() > 0).all()
    assert not rejects["stage"].isin(["error", "crash"]).any(), rejects[
        rejects["stage"].isin(["error", "crash"])
    ]


# -- issue 10: a real course on it ----------------------------------------------------


def _small_build(cod_cifs: Path, out: Path, cache: Path | None = None, **kwargs):
    return build_competition(cod_dir_source(cod_cifs).head(40), out, workers=2,
                             cache_dir=cache, progress=False, **kwargs)  # fmt: skip


def test_rebuild_refuses_a_competition_in_use_and_force_leaves_nothing_stale(cod_cifs, tmp_path):
    from scoring.leaderboard import Leaderboard

    out = tmp_path / "out"
    _small_build(cod_cifs, out, tmp_path / "c")
    with Leaderboard.open(out) as board:
        board.submit(out / "public" / "sample_submission.csv", "alpha")
    (out / "baselines").mkdir()
    (out / "public" / "notes.txt").write_text("left by hand")
    (out / "private" / "amendments").mkdir()
    (out / "private" / "amendments" / "old-solution.csv").write_text("id\n")
    before = tree_bytes(out)
    with pytest.raises(BuildError, match=r"in use \(leaderboard.*--force"):
        _small_build(cod_cifs, out, tmp_path / "c", config=BuildConfig(seed=5))
    assert tree_bytes(out) == before, "a refused rebuild changed the folder"

    _small_build(cod_cifs, out, tmp_path / "c", config=BuildConfig(seed=5), force=True)
    assert not (out / "leaderboard").exists() and not (out / "baselines").exists()
    assert not (out / "public" / "notes.txt").exists()
    assert not (out / "private" / "amendments").exists()
    assert verify_manifest(out) == []
    assert sorted(tree_bytes(out)) == sorted(LAYOUT)


def test_a_second_build_into_the_same_folder_is_refused_while_one_runs(cod_cifs, tmp_path):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running build holds
        with pytest.raises(BuildError, match="another build is writing to"):
            _small_build(cod_cifs, out)
    finally:
        os.close(fd)
    _small_build(cod_cifs, out)  # the lock died with its holder
    assert verify_manifest(out) == []


def test_two_builds_at_once_share_the_cache(cod_cifs, tmp_path):
    """Issue 10, item 3: the second died with 'database is locked' before."""
    command = [
        sys.executable, "-m", "xrd_bravais", "build", "--source", "cod-dir",
        "--input", str(cod_cifs), "--limit", "120", "--cache-dir", str(tmp_path / "cache"),
        "--workers", "1", "--quiet",
    ]  # fmt: skip
    runs = [subprocess.Popen([*command, "--out", str(tmp_path / name)], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for name in ("a", "b")]  # fmt: skip
    outputs = [p.communicate(timeout=600) for p in runs]
    for process, (_, stderr) in zip(runs, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


def test_private_material_is_owner_only(cod_cifs, tmp_path):
    from scoring.leaderboard import DB_PATH, Leaderboard

    out = tmp_path / "out"
    _small_build(cod_cifs, out)
    with Leaderboard.open(out) as board:
        board.submit(out / "public" / "sample_submission.csv", "alpha")
    assert (out / "private").stat().st_mode & 0o777 == 0o700
    for path in (out / "private").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (out / DB_PATH).parent.stat().st_mode & 0o777 == 0o700
    assert (out / DB_PATH).stat().st_mode & 0o077 == 0
    assert (out / "public" / "train.parquet").stat().st_mode & 0o044 == 0o044  # shareable


def test_refuses_a_build_without_test_rows(cod_cifs, tmp_path):
    folder = tmp_path / "cifs"
    folder.mkdir()
    for path in sorted(cod_cifs.glob("*.cif"))[:2]:
        (folder / path.name).symlink_to(path)
    for k in range(5):
        (folder / f"junk{k}.cif").write_text("not a cif at all\n")
    with pytest.raises(BuildError, match=r"cannot make a competition.*empty"):
        build_competition(cod_dir_source(folder), tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_data_card_says_test_counts_follow_the_training_mix(cod_build):
    text = (cod_build.out / "public" / "DATA.md").read_text()
    assert "not published" not in text
    assert "the class mix of the test set is not a secret" in text


def test_data_card_and_sample_submission_name_the_same_majority_lattice(cod_build):
    text = (cod_build.out / "public" / "DATA.md").read_text()
    named = re.search(r"always `(\w+)`, the commonest training lattice", text).group(1)
    sample = pd.read_csv(cod_build.out / "public" / "sample_submission.csv")
    assert set(sample["bravais_lattice"]) == {named}
    train = pd.read_parquet(cod_build.out / "public" / "train.parquet",
                            columns=["bravais_lattice"])  # fmt: skip
    counts = train["bravais_lattice"].value_counts()
    assert counts[named] == counts.max()


def test_train_sticks_list_the_reflections_of_training_rows_only(cod_build):
    out = cod_build.out
    sticks = pd.read_parquet(out / "public" / "train_sticks.parquet")
    assert sticks.columns.tolist() == ["id", "two_theta", "d", "intensity", "h", "k", "l",
                                       "nx", "ny", "nz"]  # fmt: skip
    train = pd.read_parquet(out / "public" / "train.parquet")
    test_ids = set(pd.read_parquet(out / "public" / "test.parquet", columns=["id"])["id"])
    assert set(sticks["id"]) == set(train["id"]) and not set(sticks["id"]) & test_ids
    assert sticks["id"].is_monotonic_increasing
    # Each row's reflections: Bragg's law, |n| = 1/d, strongest at 1.
    np.testing.assert_allclose(
        np.sin(np.radians(sticks["two_theta"] / 2)) * 2 * sticks["d"], 1.54184, rtol=1e-4
    )
    length = np.linalg.norm(sticks[["nx", "ny", "nz"]].to_numpy(np.float64), axis=1)
    np.testing.assert_allclose(length, 1 / sticks["d"], rtol=1e-4)
    assert np.allclose(sticks.groupby("id")["intensity"].max(), 1.0)
    # The training pattern is those sticks broadened: its maximum sits on a strong stick.
    grid = np.linspace(5, 90, train.shape[1] - 5)
    for row in train.head(20).itertuples(index=False):
        y = np.asarray(row[5:], dtype=np.float64)
        mine = sticks[(sticks["id"] == row[0]) & (sticks["intensity"] > 0.2)]
        assert np.min(np.abs(mine["two_theta"] - grid[np.argmax(y)])) < 0.1


# -- issue 13: generated crystals for the training split only ---------------------------


def test_rare_lattice_crystals_take_equal_shares():
    from competition.sources.catalog import rare_lattice_source
    from xrd_bravais.contract.labels import bravais_lattice

    source = rare_lattice_source(n=40, lattices=("aP", "oF"), seed=2)
    order = source.description["spacegroups"]
    lattices = [bravais_lattice(order[k % len(order)]) for k in range(40)]
    assert lattices[:4] == ["aP", "oF", "aP", "oF"] and lattices.count("aP") == 20
    assert source.description["seed"] == 3 and source.description["prefix"] == "train-generated"
    with pytest.raises(Exception, match="Bravais lattices"):
        rare_lattice_source(n=4, lattices=("cubic",))


def test_generated_training_crystals_never_reach_the_test_set(cod_cifs, tmp_path):
    from competition.sources.catalog import rare_lattice_source

    out = tmp_path / "out"
    summary = _small_build(cod_cifs, out, train_extra=rare_lattice_source(12, ("aP", "oI"), 5))
    train_meta = pd.read_parquet(out / "public" / "train_meta.parquet")
    test_meta = pd.read_parquet(out / "private" / "test_meta.parquet")
    generated = train_meta[train_meta["entry_id"].str.startswith("train-generated:")]
    assert not test_meta["entry_id"].str.startswith("train-generated:").any()
    rejects = pd.read_csv(out / "reports" / "rejects.csv")
    left_out = rejects["entry_id"].str.startswith("train-generated:").sum()
    assert len(generated) + left_out == 12 and len(generated) >= 8
    labels = pd.read_parquet(out / "public" / "train.parquet", columns=["id", "bravais_lattice"])
    # The label is spglib's, as for every structure: a random crystal placed in an oI
    # group can have a symmetry of its own (seen: oS), so most, not all, are aP or oI.
    lattices = labels.set_index("id").loc[generated["id"], "bravais_lattice"]
    assert lattices.isin(["aP", "oI"]).mean() >= 0.5 and "aP" in set(lattices)
    record = read_manifest(out)["train_generated"]
    assert record["n"] == len(generated) == summary.train_generated["n"]
    assert sum(record["per_lattice"].values()) == len(generated)
    assert f"{len(generated)} of these training structures are not real" in (
        out / "public" / "DATA.md").read_text()
    assert len(labels) == len(train_meta)
    verify_manifest(out)
