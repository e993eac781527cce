"""The archive source: CIFs streamed from a tar or zip, never unpacked."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from competition.sources.archive import archive_source
from competition.sources.catalog import RawEntry, Rejected, SourceError, cod_dir_source

MP_ARCHIVE = Path(__file__).resolve().parents[2] / "shared" / "data" / "mp" / "mp_cifs.tar.xz"


def _mp_members(n: int) -> list[tuple[str, bytes]]:
    """The first ``n`` CIFs of the Materials Project archive (P1, every atom explicit)."""
    if not MP_ARCHIVE.is_file():
        pytest.skip(f"{MP_ARCHIVE} is absent (the shared data)")
    found = []
    with tarfile.open(MP_ARCHIVE, "r|xz") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".cif"):
                found.append((member.name, tar.extractfile(member).read()))  # type: ignore[union-attr]
                if len(found) == n:
                    break
    return found


@pytest.fixture(scope="module")
def members(cod_cifs: Path) -> list[tuple[str, bytes]]:
    """40 real COD files, two Materials Project files and a README, in archive order."""
    cod = [(f"cod/{p.name}", p.read_bytes()) for p in sorted(cod_cifs.glob("*.cif"))[:40]]
    return [("README.txt", b"not a CIF"), *cod, *_mp_members(2)]


def _tar(path: Path, members: list[tuple[str, bytes]], mode: str = "w:xz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("suffix", ["tar.xz", "tar.gz", "tar.bz2", "zip"])
def test_every_cif_member_is_an_entry_in_order_and_the_rest_are_passed_over(
    members, tmp_path, suffix
):
    path = tmp_path / f"cifs.{suffix}"
    if suffix == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members:
                archive.writestr(name, data)
    else:
        _tar(path, members, "w:" + suffix.split(".")[1])
    source = archive_source(path)
    entries = list(source.entries())
    assert [e.entry_id for e in entries] == [f"archive:{n}" for n, _ in members[1:]]
    assert all(isinstance(e, RawEntry) for e in entries) and source.failure() is None
    first = entries[0]
    assert first.text.encode("latin-1") == members[1][1] or first.text == members[1][1].decode()
    assert first.cod_id == int(Path(members[1][0]).stem)  # the COD id, from the file
    assert first.source_file == f"{path}#{members[1][0]}"
    assert source.kind == "archive" and len(source.description["sha256"]) == 64
    assert source.size == (len(members) - 1 if suffix == "zip" else None)
    assert list(source.head(3).entries()) == entries[:3]  # read afresh, cut


def test_a_corrupt_member_is_a_reject_and_reading_goes_on(members, tmp_path):
    path = tmp_path / "cifs.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members[1:4]:
            archive.writestr(name, data)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.infolist()[1]
        start = info.header_offset + 30 + len(info.filename.encode())
    raw[start + 10:start + 40] = b"\0" * 30  # the second member's compressed data
    path.write_bytes(bytes(raw))
    entries = list(archive_source(path).entries())
    assert [type(e) for e in entries] == [RawEntry, Rejected, RawEntry]
    assert entries[1].stage == "read" and "corrupt member" in entries[1].reason
    gz = _tar(tmp_path / "gz.tar.xz", [("a.cif.gz", b"\x1f\x8bnot gzip at all")])
    (bad,) = archive_source(gz).entries()
    assert isinstance(bad, Rejected) and "cannot read member a.cif.gz" in bad.reason


def test_a_truncated_archive_gives_what_it_holds_then_one_line(members, tmp_path):
    whole = _tar(tmp_path / "whole.tar.xz", members)
    cut = tmp_path / "cut.tar.xz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    source = archive_source(cut)
    entries = list(source.entries())
    assert 0 < len(entries) < len(members) - 1
    assert all(isinstance(e, RawEntry) for e in entries)
    problem = source.failure()
    assert problem is not None and "\n" not in problem
    assert f"breaks after {len(entries)} CIF member(s)" in problem and "resumes" in problem


def test_a_truncated_build_caches_what_it_read_and_says_so_in_one_line(members, tmp_path):
    from competition.config import BuildConfig
    from competition.lattice.build import BuildError, build_competition

    whole = _tar(tmp_path / "whole.tar.xz", members)
    cut = tmp_path / "cut.tar.xz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    n_read = len(list(archive_source(cut).entries()))
    with pytest.raises(BuildError, match="the archive breaks after"):
        build_competition(archive_source(cut), tmp_path / "out", BuildConfig(), workers=2,
                          cache_dir=tmp_path / "cache", progress=False)  # fmt: skip
    assert not (tmp_path / "out" / "manifest.json").exists()
    summary = build_competition(archive_source(whole), tmp_path / "out", BuildConfig(
        test_fraction=0.3, public_fraction=0.5), workers=2, cache_dir=tmp_path / "cache",
        progress=False)  # fmt: skip
    assert summary.n_cached == n_read  # the rerun resumed from what the cut archive gave
    import json

    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "archive"
    assert manifest["source"]["sha256"] == archive_source(whole).description["sha256"]
    assert "Materials Project" in (tmp_path / "out" / "public" / "DATA.md").read_text()


def test_a_folder_is_read_as_cod_dir_and_other_inputs_are_refused(cod_cifs, tmp_path):
    folder = archive_source(cod_cifs)
    assert [e.entry_id for e in folder.entries()][:3] == \
        [e.entry_id for e in cod_dir_source(cod_cifs).entries()][:3]  # fmt: skip
    assert folder.description["kind"] == "archive"
    with pytest.raises(SourceError, match="does not exist"):
        archive_source(tmp_path / "missing.tar.xz")
    (tmp_path / "cifs.rar").write_bytes(b"Rar!")
    with pytest.raises(SourceError, match="not an archive this source opens"):
        archive_source(tmp_path / "cifs.rar")
    (tmp_path / "half.zip").write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(SourceError, match="not a readable zip"):
        archive_source(tmp_path / "half.zip")


def test_a_p1_file_of_computed_structure_declares_no_group_and_archives_use_mps_tolerance():
    from competition.config import BuildConfig, symprec_for
    from competition.lattice.worker import StructureRecord, process_entry

    assert symprec_for("archive") == 0.1 and symprec_for("amcsd") == 0.01
    records = [process_entry(RawEntry(f"archive:{name}", None, name, data.decode()),
                             BuildConfig(symprec=symprec_for("archive")))
               for name, data in _mp_members(5)]  # fmt: skip
    records = [r for r in records if isinstance(r, StructureRecord)]
    assert records and all(r.symprec_used == 0.1 for r in records)
    # Written in P1 with every atom explicit: no declared group where spglib finds one.
    for record in records:
        expected = 1 if record.spacegroup_number == 1 else None
        assert record.declared_spacegroup == expected
    assert any(r.spacegroup_number > 1 for r in records)


def test_the_cli_builds_from_an_archive_at_its_tolerance_and_refuses_a_cut_one(
    members, tmp_path
):
    import json

    from test_cli import run

    whole = _tar(tmp_path / "cifs.tar.gz", members, "w:gz")
    done = run("build", "--source", "archive", "--input", str(whole), "--out", "comp",
               "--test-fraction", "0.3", "--public-fraction", "0.5", "--quiet",
               "--cache-dir", "cache", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "comp" / "manifest.json").read_text())["config"]
    assert config["symprec"] == 0.1
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    failed = run("build", "--source", "archive", "--input", str(cut), "--out", "other",
                 "--quiet", "--no-cache", cwd=tmp_path)  # fmt: skip
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "the archive breaks after" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
    missing = run("build", "--source", "archive", "--out", "x", cwd=tmp_path)
    assert missing.returncode != 0 and "needs --input PATH" in missing.stderr


def test_extra_training_structures_from_an_archive_never_reach_or_copy_the_test_set(
    cod_cifs, members, tmp_path
):
    """Main source: 60 COD files; extra: an archive of the first 40 of them and two MP files.

    Baselines then know the main source's rows: search-match chooses its window on them.
    """
    import json

    import pandas as pd
    from test_cli import run

    main = tmp_path / "main"
    main.mkdir()
    for path in sorted(cod_cifs.glob("*.cif"))[:60]:
        (main / path.name).symlink_to(path)
    extra = _tar(tmp_path / "extra.tar.xz", members)
    done = run("build", "--source", "cod-dir", "--input", str(main), "--out", "comp",
               "--train-extra", f"archive:{extra}", "--test-fraction", "0.3",
               "--min-test-per-lattice", "0", "--quiet", "--no-cache", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = tmp_path / "comp"
    meta = pd.read_parquet(out / "public" / "train_meta.parquet")
    assert set(meta["source"]) == {"cod-dir:main", "archive:extra.tar.xz"}
    added = meta[meta["source"] == "archive:extra.tar.xz"]
    assert added["entry_id"].str.startswith("train-extra:archive:").all()
    # The 40 COD files are the main source's own: each is a repeat of a training row or
    # a test compound, unless the archive's tolerance (0.1) labels it differently from
    # the main source's (0.01): then it is another compound, kept (seen: KYb2F7, one).
    names = added["entry_id"].str.rsplit("/", n=1).str[-1]
    assert {name.rsplit("/", 1)[-1] for name, _ in members[-2:]} <= set(names)
    labels = pd.read_parquet(out / "public" / "train.parquet").set_index("id")
    for row, name in zip(added.itertuples(), names, strict=True):
        twin = meta[meta["entry_id"] == f"file:{name}"]
        if len(twin):
            assert labels.loc[twin["id"].iloc[0], "spacegroup_number"] != labels.loc[
                row.id, "spacegroup_number"], name
    assert len(added) <= 2 + 3
    assert (added["symprec_used"] == 0.1).all()
    rejects = pd.read_csv(out / "reports" / "rejects.csv", keep_default_na=False)
    left_out = rejects[rejects["entry_id"].str.startswith("train-extra:")]
    read = {f"train-extra:archive:{name}" for name, _ in members if name.endswith(".cif")}
    assert set(left_out["entry_id"]) | set(added["entry_id"]) == read
    assert set(left_out["stage"]) <= {"dedup", "parse", "symmetry", "near-copy"}
    test_meta = pd.read_parquet(out / "private" / "test_meta.parquet").merge(
        pd.read_csv(out / "private" / "solution.csv"), on="id")

    def keys(frame: pd.DataFrame) -> set[tuple[str, int]]:
        return set(zip(frame["formula"], frame["spacegroup_number"].astype(int), strict=True))

    train = pd.read_parquet(out / "public" / "train.parquet")
    assert not keys(test_meta) & keys(train)
    assert "test compound" in " ".join(left_out["reason"])
    assert "repeat of file:" in " ".join(left_out["reason"])
    record = json.loads((out / "manifest.json").read_text())["train_extra"]
    assert [(r["label"], r["n"], r["symprec"]) for r in record] == [
        ("archive:extra.tar.xz", len(added), 0.1)]
    assert record[0]["read"] == len(read) and record[0]["source"]["sha256"]
    card = (out / "public" / "DATA.md").read_text()
    assert f"`archive:extra.tar.xz`: {len(added)} rows kept" in card
    assert "Materials Project" in card and "public domain" in card
    # Baselines tune on the build's own rows, the kind its test rows are.
    from baselines.data import own_source_rows
    from baselines.runner.run import run_baseline

    own = own_source_rows(out, train["id"].to_numpy())
    expected = meta.set_index("id").loc[train["id"], "source"] == "cod-dir:main"
    assert own is not None and (own == expected.to_numpy()).all() and 0 < own.sum() < len(own)
    result = run_baseline(out, "search-match", cv=0, record=False, verbose=False)
    window = result.extras["symmetry_window"]
    assert window["fitted"] and 0 < window["held_out"]["rows"] <= own.sum()
    # xgboost-realism's sample of the rows takes them first.
    from baselines.data import own_source_first_sample
    from baselines.runner.report import training_rows

    n = len(own) - 1
    result = run_baseline(out, "xgboost-realism", cv=0, record=False, verbose=False,
                          params={"max_rows": n, "estimator__model__n_estimators": 5})  # fmt: skip
    y = train["bravais_lattice"].to_numpy()
    first = int(own[own_source_first_sample(y, own, n)].sum())
    assert result.extras["rows_used"] == n and result.extras["own_rows_used"] == first
    assert training_rows(result.to_dict()).endswith(
        f"({n} used: {first} of the build's own source first)")
    # And cnn1d-realism's epochs hold every one of them.
    result = run_baseline(out, "cnn1d-realism", cv=0, record=False, verbose=False,
                          params={"epochs": 1, "rows_per_epoch": n})  # fmt: skip
    assert result.extras["rows_per_epoch"] == {"rows": n, "own": min(int(own.sum()), n)}


@pytest.mark.parametrize("bad", ["archive", "zip:x.zip", "archive:missing.tar.xz"])
def test_a_bad_train_extra_is_one_line(bad, tmp_path):
    from test_cli import run

    done = run("build", "--out", "comp", "--train-extra", bad, "--quiet", cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--train-extra" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "comp").exists()


def test_the_data_card_quotes_the_measured_label_changes_of_a_known_archive():
    from competition.lattice.report import _tolerance_text
    from competition.sources.archive import TOLERANCE_CHANGES
    from competition.sources.catalog import sha256_file

    if not MP_ARCHIVE.is_file():
        pytest.skip(f"{MP_ARCHIVE} is absent (the shared data)")
    digest = sha256_file(MP_ARCHIVE)
    assert digest in TOLERANCE_CHANGES  # the figures belong to this very file
    text = " ".join(_tolerance_text([{"kind": "archive", "sha256": digest}]).split())
    assert "puts 4,915 of its 154,908 structures (3.2 %) in another Bravais lattice" in text
    assert _tolerance_text([{"kind": "archive", "sha256": "0" * 64}, {"kind": "amcsd"}]) == ""
