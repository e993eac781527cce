"""Grading against the answer key: hash check, one-to-one join, portions, both tracks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import solution_frame

from scoring.grade import AnswerKeyError, grade, load_answer_key, reference_guesses
from scoring.submission import SubmissionError
from xrd_bravais.contract.labels import BRAVAIS_LATTICES


def test_perfect_submission_scores_one_on_both_portions(synthetic) -> None:
    key = solution_frame(synthetic)
    for track, column in (("bravais", "bravais_lattice"), ("spacegroup", "spacegroup_number")):
        result = grade(key[["id", column]], synthetic, track)
        assert result.public.accuracy == result.private.accuracy == 1.0
        assert result.public.macro_f1 == 1.0
        assert result.public.n + result.private.n == len(key)
        assert result.public.n == (key["Usage"] == "Public").sum()


def test_join_is_on_id_not_row_order(synthetic) -> None:
    key = solution_frame(synthetic)
    rng = np.random.default_rng(0)
    guess = key[["id", "bravais_lattice"]].copy()
    flip = rng.random(len(guess)) < 0.4
    guess.loc[flip, "bravais_lattice"] = "cF"
    shuffled = guess.sample(frac=1, random_state=1)
    assert grade(shuffled, synthetic).to_dict() == grade(guess, synthetic).to_dict() | {
        "submission_sha256": grade(shuffled, synthetic).submission_sha256
    }
    expected = (guess["bravais_lattice"] == key["bravais_lattice"])[key["Usage"] == "Public"].mean()
    assert grade(guess, synthetic).public.accuracy == pytest.approx(expected)


def test_portions_are_scored_separately(synthetic) -> None:
    key = solution_frame(synthetic)
    guess = key[["id", "bravais_lattice"]].copy()
    guess.loc[key["Usage"] == "Private", "bravais_lattice"] = "aP"
    result = grade(guess, synthetic)
    assert result.public.accuracy == 1.0
    assert result.private.accuracy == pytest.approx(
        (key.loc[key["Usage"] == "Private", "bravais_lattice"] == "aP").mean()
    )


def test_changed_answer_key_is_refused(synthetic) -> None:
    path = synthetic / "private" / "solution.csv"
    path.write_text(path.read_text().replace("Public", "Private", 1))
    with pytest.raises(AnswerKeyError, match="changed after the build"):
        load_answer_key(synthetic)


def test_missing_answer_key_and_missing_hash(synthetic) -> None:
    manifest = json.loads((synthetic / "manifest.json").read_text())
    del manifest["files"]["private/solution.csv"]
    (synthetic / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AnswerKeyError, match="records no hash"):
        load_answer_key(synthetic)
    (synthetic / "private" / "solution.csv").unlink()
    with pytest.raises(AnswerKeyError, match="grading runs only where"):
        load_answer_key(synthetic)


def test_invalid_submission_is_not_scored(synthetic) -> None:
    with pytest.raises(SubmissionError, match="missing ids"):
        grade(b"id,bravais_lattice\nt000000,cF\n", synthetic)


def test_reference_guesses_use_real_counts(synthetic) -> None:
    key = load_answer_key(synthetic)
    ref = reference_guesses(key, "bravais", "Public")
    assert ref["uniform"] == pytest.approx(1 / 14)
    sol = solution_frame(synthetic)
    train = pd.read_parquet(synthetic / "public" / "train.parquet", columns=["bravais_lattice"])
    counts = train["bravais_lattice"].value_counts().reindex(BRAVAIS_LATTICES, fill_value=0)
    majority = BRAVAIS_LATTICES[int(np.argmax(counts.to_numpy()))]  # ties: canonical order
    public = sol[sol["Usage"] == "Public"]
    assert ref["majority"] == pytest.approx((public["bravais_lattice"] == majority).mean())
    assert reference_guesses(key, "spacegroup", "Private")["uniform"] == pytest.approx(1 / 230)


def test_grades_a_real_build(cod_build) -> None:
    out = cod_build.out
    key = solution_frame(out)
    result = grade(key[["id", "spacegroup_number"]], out, "spacegroup")
    assert result.public.accuracy == result.private.accuracy == 1.0
    sample = grade(out / "public" / "sample_submission.csv", out)
    public = key[key["Usage"] == "Public"]
    common = pd.read_csv(out / "public" / "sample_submission.csv")["bravais_lattice"].iloc[0]
    assert sample.public.accuracy == pytest.approx((public["bravais_lattice"] == common).mean())


def test_data_card_publishes_the_random_guess_reference(cod_build) -> None:
    out = cod_build.out
    card = (out / "public" / "DATA.md").read_text()
    train = pd.read_parquet(out / "public" / "train.parquet", columns=["bravais_lattice"])
    counts = train["bravais_lattice"].value_counts().reindex(BRAVAIS_LATTICES, fill_value=0)
    shares = counts.to_numpy() / counts.sum()
    assert "uniform guess (each lattice with probability 1/14): 7.14 %" in card
    assert f"training share): {100 * (shares**2).sum():.2f} %" in card
    assert f"lattice): {100 * shares.max():.2f} %" in card
