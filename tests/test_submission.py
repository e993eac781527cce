"""The student-side validator: a perfect file broken one way at a time, and fuzzing."""

from __future__ import annotations

import io
import re

import hypothesis.strategies as st
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from scoring.submission import SubmissionError, size_limit, validate_submission

IDS = [f"t{i:06d}" for i in range(30)]
LABELS = ["aP", "mP", "mS", "oP", "oS", "oI", "oF", "tP", "tI", "hR", "hP", "cP", "cI", "cF"]


def perfect(track: str = "bravais") -> str:
    if track == "bravais":
        rows = [f"{i},{LABELS[k % 14]}" for k, i in enumerate(IDS)]
        return "id,bravais_lattice\n" + "\n".join(rows) + "\n"
    rows = [f"{i},{1 + 7 * k}" for k, i in enumerate(IDS)]
    return "id,spacegroup_number\n" + "\n".join(rows) + "\n"


def problems(text: str | bytes, track: str = "bravais") -> list[str]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    with pytest.raises(SubmissionError) as info:
        validate_submission(data, IDS, track)
    return info.value.problems


@pytest.mark.parametrize("track", ["bravais", "spacegroup"])
def test_perfect_submission_is_valid_with_no_notices(track: str) -> None:
    valid = validate_submission(perfect(track).encode(), IDS, track)
    assert valid.notices == ()
    assert valid.frame["id"].tolist() == IDS
    assert len(valid.codes) == 30


def test_row_order_is_free() -> None:
    header, *rows = perfect().strip().split("\n")
    shuffled = "\n".join([header, *reversed(rows)]) + "\n"
    valid = validate_submission(shuffled.encode(), IDS)
    assert valid.frame.set_index("id").loc["t000003", "bravais_lattice"] == "oP"


# One defect at a time: each gives exactly one problem with its own message.
MUTATIONS = [
    ("empty file", lambda s: "", r"file is empty; expected the header 'id,bravais_lattice'"),
    ("header only", lambda s: s.split("\n")[0] + "\n", r"header but no rows"),
    ("missing header", lambda s: s.split("\n", 1)[1], r"first line is data .* add it"),
    ("wrong header", lambda s: s.replace("bravais_lattice", "label", 1),
     r"header is 'id,label', expected 'id,bravais_lattice': no column 'bravais_lattice'"),
    ("space-group header", lambda s: s.replace("bravais_lattice", "spacegroup_number", 1),
     r"spacegroup track's header; validate with --track spacegroup"),
    ("extra column", lambda s: s.replace("\n", ",x\n"), r"extra column 'x'"),
    ("index column", lambda s: "\n".join(
        ("," if k == 0 else f"{k - 1},") + line for k, line in enumerate(s.strip().split("\n"))
    ) + "\n", r"extra column ''"),
    ("missing row", lambda s: s.replace("t000007,tP\n", ""),
     r"covers 29 of the 30 ids of test.parquet; missing ids: t000007; write exactly one row"),
    ("extra id", lambda s: s + "t999999,cF\n",
     r"1 id is not in test.parquet: t999999; predict only the ids"),
    ("duplicate id", lambda s: s + "t000003,cF\n",
     r"1 id appears more than once \(1 extra row\): t000003"),
    ("empty id", lambda s: s + ",cF\n", r"1 row has an empty id \(data row 31\)"),
    ("unknown label", lambda s: s.replace("t000001,mP", "t000001,cubic"),
     r"1 row has a label that is not one of the 14 Bravais lattices .*'cubic'"),
    ("lower-case label", lambda s: s.replace("t000013,cF", "t000013,cf"),
     r"'cf' \(did you mean 'cF'\?\)"),
    ("empty label", lambda s: s.replace("t000013,cF", "t000013,"), r"1 row has no label"),
    ("number label", lambda s: s.replace("t000013,cF", "t000013,225"),
     r"numbers look like space groups: use --track spacegroup"),
    ("ragged row", lambda s: s.replace("t000002,mS", "t000002,mS,extra"),
     r"1 row has not 2 fields like the header \(line 4"),
    ("semicolons", lambda s: s.replace(",", ";"), r"separated by semicolons, expected commas"),
    ("nul byte", lambda s: s.replace("t000000,aP", "t000000,aP\x00"),
     r"NUL bytes \(first on line 2\)"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "mutate", "message"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_each_defect_gives_its_message(name, mutate, message) -> None:
    text = mutate(perfect())
    data = text.encode("utf-8", errors="surrogateescape")
    found = problems(data)
    assert len(found) == 1, found
    assert re.search(message, found[0]), found[0]


SPACEGROUP_MUTATIONS = [
    ("non-integer", lambda s: s.replace("t000001,8", "t000001,P2_1/c"),
     r"1 row has a space group that is not an integer: 'P2_1/c'"),
    ("lattice symbol", lambda s: s.replace("t000001,8", "t000001,cF"),
     r"look like Bravais lattices: use --track bravais"),
    ("zero", lambda s: s.replace("t000001,8", "t000001,0"), r"outside 1\.\.230: 0"),
    ("231", lambda s: s.replace("t000001,8", "t000001,231"), r"outside 1\.\.230: 231"),
    ("huge", lambda s: s.replace("t000001,8", "t000001,99999999999999999999"),
     r"outside 1\.\.230: 99999999999999999999"),
    ("fraction", lambda s: s.replace("t000001,8", "t000001,8.5"), r"not an integer: '8.5'"),
    ("empty", lambda s: s.replace("t000001,8", "t000001,"), r"1 row has no space-group number"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "mutate", "message"), SPACEGROUP_MUTATIONS, ids=[m[0] for m in SPACEGROUP_MUTATIONS]
)
def test_each_spacegroup_defect_gives_its_message(name, mutate, message) -> None:
    found = problems(mutate(perfect("spacegroup")), "spacegroup")
    assert len(found) == 1, found
    assert re.search(message, found[0]), found[0]


def test_undecodable_bytes_are_reported_and_checking_goes_on() -> None:
    data = perfect().encode().replace(b"t000000,aP", b"t000000,a\xe9P")
    encoding, label = problems(data)
    assert encoding.startswith("file is not UTF-8: byte 0xE9 on line 2 cannot be decoded")
    assert "1 row has a label that is not one of the 14" in label


def test_every_problem_is_listed_in_one_pass() -> None:
    text = perfect().replace("t000007,tP\n", "") + "t000003,cF\nt999999,xx\n"
    found = problems(text)
    assert len(found) == 4  # missing, duplicate, extra id, unknown label
    assert str(SubmissionError(found)).startswith("the submission is not valid (4 problems):")


def test_examples_are_capped_at_three() -> None:
    header = perfect().split("\n")[0]
    (message,) = problems(header + "\nt000000,aP\n")
    assert "missing ids (first 3): t000001, t000002, t000003;" in message
    assert "t000004" not in message


@pytest.mark.parametrize(
    ("transform", "notice"),
    [
        (lambda s: b"\xef\xbb\xbf" + s.encode(), "removed the UTF-8 byte-order mark"),
        (lambda s: s.encode("utf-16"), "file is UTF-16"),
        (lambda s: s.replace("mS", "mC").replace("oS", "oC").encode(), "read mC as mS, oC as oS"),
        (lambda s: s.replace(",", " , ").encode(), "removed spaces around values"),
        (
            lambda s: s.replace("id,bravais_lattice", "ID,Bravais_Lattice").encode(),
            "read the header",
        ),
    ],
)
def test_harmless_defects_are_fixed_with_a_notice(transform, notice) -> None:
    valid = validate_submission(transform(perfect()), IDS)
    assert any(n.startswith(notice) for n in valid.notices), valid.notices
    assert validate_submission(perfect().encode(), IDS).frame.equals(valid.frame)


def test_crlf_line_endings_are_read_as_is() -> None:
    valid = validate_submission(perfect().replace("\n", "\r\n").encode(), IDS)
    assert valid.notices == ()


def test_integral_decimal_space_groups_are_read_with_a_notice() -> None:
    data = perfect("spacegroup").replace(",8\n", ",8.0\n").encode()
    valid = validate_submission(data, IDS, "spacegroup")
    assert valid.frame.loc[1, "spacegroup_number"] == 8
    assert "written like '14.0'" in valid.notices[0]


def test_oversize_file_is_refused_without_reading_it(tmp_path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"x" * (size_limit(len(IDS)) + 1))
    (message,) = problems_for(path)
    assert "over the limit" in message


def problems_for(submission) -> list[str]:
    with pytest.raises(SubmissionError) as info:
        validate_submission(submission, IDS)
    return info.value.problems


def test_missing_file_and_zip_file(tmp_path) -> None:
    assert "not found" in problems_for(tmp_path / "nope.csv")[0]
    assert "ZIP or Excel" in problems_for(b"PK\x03\x04rest")[0]


def test_dataframe_and_file_object_inputs() -> None:
    frame = pd.read_csv(io.StringIO(perfect()))
    expected = validate_submission(perfect().encode(), IDS).frame
    assert validate_submission(frame, IDS).frame.equals(expected)
    assert "expected a file path" in problems_for(perfect())[0]
    assert validate_submission(io.BytesIO(perfect().encode()), IDS).frame["id"].tolist() == IDS


def test_validates_against_a_built_competition(cod_build) -> None:
    out = cod_build.out
    for track, sample in (("bravais", "sample_submission.csv"),
                          ("spacegroup", "sample_submission_spacegroup.csv")):  # fmt: skip
        valid = validate_submission(out / "public" / sample, out, track)
        test = pd.read_parquet(out / "public" / "test.parquet", columns=["id"])
        assert sorted(valid.frame["id"]) == sorted(test["id"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_fuzzed_bytes_are_valid_or_a_submission_error(data: bytes) -> None:
    try:
        validate_submission(data, IDS)
    except SubmissionError as err:
        assert err.problems and all(isinstance(p, str) and p for p in err.problems)


CELLS = st.sampled_from(IDS[:5] + LABELS[:4] + ["", " ", '"', "mC", "id", "bravais_lattice",
                                                 "1", "é", ";", "\t", "t999"])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(CELLS, min_size=0, max_size=4), max_size=12),
       st.sampled_from(["\n", "\r\n", "\r"]), st.booleans())  # fmt: skip
def test_fuzzed_csv_like_text_is_valid_or_a_submission_error(rows, newline, header) -> None:
    lines = ([["id", "bravais_lattice"]] if header else []) + rows
    data = newline.join(",".join(r) for r in lines).encode()
    for track in ("bravais", "spacegroup"):
        try:
            validate_submission(data, IDS[:5], track)
        except SubmissionError as err:
            assert err.problems
