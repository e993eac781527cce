"""Sources: AMCSD read-only, a COD-layout mirror, downloads from a loopback COD server."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from competition.sources.catalog import (
    DownloadSettings,
    RawEntry,
    Rejected,
    SourceError,
    amcsd_database_path,
    amcsd_source,
    cod_dir_source,
    cod_id_from,
    cod_ids_source,
    decode_cif_bytes,
    generated_source,
    open_readonly,
    read_cod_ids,
)
from competition.sources.structures import parse_structure

# ------------------------------------------------------------------ amcsd


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_amcsd_is_opened_read_only_and_left_untouched():
    path = amcsd_database_path()
    before = (_sha(path), path.stat().st_mtime_ns)
    source = amcsd_source()
    assert source.size > 9000
    entries = list(source.head(40).entries())
    assert len(entries) == 40
    con = open_readonly(path)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        con.execute("CREATE TABLE t (x)")
    con.close()
    assert (_sha(path), path.stat().st_mtime_ns) == before


def test_amcsd_rows_become_parsable_cifs():
    entries = [e for e in amcsd_source().head(60).entries() if isinstance(e, RawEntry)]
    assert entries[0].entry_id.startswith("amcsd:") and entries[0].cod_id is None
    parsed = 0
    for entry in entries:
        try:
            parse_structure(entry.text, max_sites=500)
            parsed += 1
        except Exception:
            pass
    assert parsed >= 50  # measured: 57 of the first 60


def test_amcsd_head_is_stable():
    first = [e.entry_id for e in amcsd_source().head(5).entries()]
    assert first == [e.entry_id for e in amcsd_source().head(5).entries()]
    assert first == sorted(first)


# ------------------------------------------------------------------ cod-dir


def test_cod_mirror_layout(cod_cifs, tmp_path):
    """A local mirror in COD's own layout cif/1/00/00/1000027.cif, linked to the real files."""
    for name in ["1000027.cif", "1011240.cif", "9008569.cif"]:
        target = tmp_path / "cif" / name[0] / name[1:3] / name[3:5] / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(cod_cifs / name)
    (tmp_path / "README.txt").write_text("not a cif")
    entries = list(cod_dir_source(tmp_path).entries())
    assert [e.entry_id for e in entries] == [
        "file:cif/1/00/00/1000027.cif", "file:cif/1/01/12/1011240.cif",
        "file:cif/9/00/85/9008569.cif",
    ]  # fmt: skip
    assert [e.cod_id for e in entries] == [1000027, 1011240, 9008569]


def test_a_source_can_be_read_twice(cod_cifs):
    source = cod_dir_source(cod_cifs).head(3)
    assert [e.entry_id for e in source.entries()] == [e.entry_id for e in source.entries()]
    assert len(list(source.entries())) == 3


def test_cod_id_from_code_then_file_name(tmp_path):
    assert cod_id_from("_cod_database_code 1234567\n") == 1234567
    assert cod_id_from("data_x\n", tmp_path / "7654321.cif") == 7654321
    assert cod_id_from("data_x\n", tmp_path / "my-structure.cif") is None


def test_cod_dir_errors(tmp_path):
    with pytest.raises(SourceError, match="not a folder"):
        cod_dir_source(tmp_path / "missing")
    with pytest.raises(SourceError, match=r"no \*\.cif"):
        cod_dir_source(tmp_path)


def test_decoding_latin1_and_gzip():
    import gzip

    assert decode_cif_bytes("Å".encode("latin-1")) == "Å"
    assert decode_cif_bytes("Å".encode()) == "Å"
    assert decode_cif_bytes(gzip.compress(b"data_x")) == "data_x"


# ------------------------------------------------------------------ cod-ids


class _CodHandler(SimpleHTTPRequestHandler):
    """Serves files; answers 503 to a path while ``flaky[path]`` > 0; logs paths."""

    flaky: ClassVar[dict[str, int]]
    requests: ClassVar[list[str]]

    def do_GET(self):
        type(self).requests.append(self.path)
        if self.flaky.get(self.path, 0) > 0:
            self.flaky[self.path] -= 1
            self.send_error(503, "try again")
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def cod_server(cod_cifs, tmp_path):
    """A real HTTP server on 127.0.0.1 serving cod_cifs, plus one garbled file."""
    root = tmp_path / "www"
    root.mkdir()
    for name in ["1000027.cif", "1011240.cif"]:
        (root / name).symlink_to(cod_cifs / name)
    (root / "1999999.cif").write_bytes(b"\x00\xff garbled <html>not a cif</html>")
    handler = type("Handler", (_CodHandler,), {"flaky": {}, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _settings(url, tmp_path, **kw):
    return DownloadSettings(url=url, cache_dir=tmp_path / "cache", backoff=0.01, **kw)


def test_download_404_and_garbled_file(cod_server, tmp_path):
    url, _ = cod_server
    source = cod_ids_source([1000027, 1011240, 1234567, 1999999], _settings(url, tmp_path))
    entries = {e.entry_id: e for e in source.entries()}
    assert isinstance(entries["cod:1000027"], RawEntry)
    assert entries["cod:1000027"].cod_id == 1000027
    missing = entries["cod:1234567"]
    assert isinstance(missing, Rejected) and "HTTP 404" in missing.reason
    assert missing.stage == "download"
    garbled = entries["cod:1999999"]
    with pytest.raises(Exception, match="parse"):
        parse_structure(garbled.text, max_sites=500)


def test_downloads_are_cached(cod_server, tmp_path):
    url, handler = cod_server
    settings = _settings(url, tmp_path)
    list(cod_ids_source([1000027], settings).entries())
    assert (tmp_path / "cache" / "1000027.cif").is_file()
    n = len(handler.requests)
    list(cod_ids_source([1000027], settings).entries())
    assert len(handler.requests) == n


def test_server_errors_are_retried(cod_server, tmp_path):
    url, handler = cod_server
    handler.flaky["/1011240.cif"] = 2
    entries = list(cod_ids_source([1011240], _settings(url, tmp_path, retries=3)).entries())
    assert isinstance(entries[0], RawEntry)
    assert handler.requests.count("/1011240.cif") == 3


def test_offline_gives_a_clear_error(tmp_path):
    import socket

    with socket.socket() as sock:  # a port on loopback that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = _settings(f"http://127.0.0.1:{port}", tmp_path, retries=1)
    with pytest.raises(SourceError, match="cannot reach the COD server"):
        cod_ids_source([1000027, 1011240], settings)


def test_offline_with_some_ids_cached_still_fails(cod_cifs, tmp_path):
    """A cache must not hide an outage: the uncached ids cannot be fetched."""
    import socket

    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "1000027.cif").write_bytes((cod_cifs / "1000027.cif").read_bytes())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = _settings(f"http://127.0.0.1:{port}", tmp_path, retries=1)
    with pytest.raises(SourceError, match="1 of 2 ids are not cached"):
        cod_ids_source([1000027, 1011240], settings)
    # Everything cached: no request is needed, so the build can go on offline.
    entries = list(cod_ids_source([1000027], settings).entries())
    assert isinstance(entries[0], RawEntry)


def test_read_cod_ids(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# my selection\n1000027\n1011240, 9008569\n\n1000027\n")
    assert read_cod_ids(ids) == [1000027, 1011240, 9008569]
    ids.write_text("1000027\nabc\n12\n")
    with pytest.raises(SourceError, match=r"2 token.*abc, 12"):
        read_cod_ids(ids)


# ------------------------------------------------------------------ generated


def test_generated_is_seeded_and_parsable():
    first = list(generated_source(n=6, seed=3).entries())
    again = list(generated_source(n=6, seed=3).entries())
    assert [e.text for e in first] == [e.text for e in again]
    other = list(generated_source(n=6, seed=4).entries())
    assert [e.text for e in first] != [e.text for e in other]
    for entry in first:
        assert isinstance(entry, RawEntry)
        parse_structure(entry.text, max_sites=1000)


def test_download_bar_follows_progress(cod_server, tmp_path, capfd):
    """Issue 10, item 17: `build --quiet` still showed the download bar."""
    url, _ = cod_server
    cod_ids_source([1000027, 1011240], _settings(url, tmp_path / "a"), progress=False)
    assert "download" not in capfd.readouterr().err
    cod_ids_source([1000027, 1011240], _settings(url, tmp_path / "b"), progress=True)
    assert "download" in capfd.readouterr().err
