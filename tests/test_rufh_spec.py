"""The IETF resumable-upload draft, rule by rule, against a real spigot process, through
h11 (tests/rufh_client.py), which sees every 104. One test per status and header rule."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from server.protocol.rufh import PROBLEM_BASE
from tests.conftest import SpigotProcess, start_spigot, stop_spigot
from tests.rufh_client import Answer, Exchange, exchange
from tests.test_raw_http import read_to_end

PARTIAL = "application/partial-upload"


def draft(version: int = 9, **fields: str) -> dict[str, str]:
    return {"Upload-Draft-Interop-Version": str(version), **fields}


def complete_field(version: int, complete: bool) -> dict[str, str]:
    if version == 3:
        return {"Upload-Incomplete": "?0" if complete else "?1"}
    return {"Upload-Complete": "?1" if complete else "?0"}


def final(ex: Exchange) -> Answer:
    assert ex.final is not None, ex
    return ex.final


def says(answer: Answer, fields: dict[str, str]) -> bool:
    return all(answer.get(name) == value for name, value in fields.items())


def path_of(server: SpigotProcess, url: str) -> str:
    return url.removeprefix(server.url)


def error_of(answer: Answer) -> tuple[str, dict[str, object]]:
    body = json.loads(answer.body)
    return body["error"]["code"], body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpigotProcess]:
    data = tmp_path_factory.mktemp("rufh") / "data"
    data.mkdir()
    proc = start_spigot(data, "--max-upload-size", "64MiB", "--max-request-size", "32MiB")
    yield proc
    stop_spigot(proc)


def create(server: SpigotProcess, version: int = 9, body: bytes = b"", **fields: str) -> Answer:
    """An upload left incomplete (`?0`), holding `body`."""
    ex = exchange(
        server.url, "POST", "/files/", {**draft(version), **complete_field(version, False),
                                        **fields}, body
    )  # fmt: skip
    answer = final(ex)
    assert answer.status == 201, (answer, answer.body)
    return answer


def append(
    server: SpigotProcess,
    url: str,
    offset: int,
    body: bytes,
    complete: bool,
    version: int = 9,
    **fields: str,
) -> Exchange:
    headers = {
        **draft(version),
        **complete_field(version, complete),
        "Upload-Offset": str(offset),
        "Content-Type": PARTIAL,
        **fields,
    }
    return exchange(server.url, "PATCH", path_of(server, url), headers, body)


def head(server: SpigotProcess, url: str, version: int = 9) -> Answer:
    return final(exchange(server.url, "HEAD", path_of(server, url), draft(version)))


def download(server: SpigotProcess, url: str) -> bytes:
    answer = final(exchange(server.url, "GET", path_of(server, url)))
    assert answer.status == 200
    return answer.body


# -- creation ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [3, 5, 6, 8, 9])
def test_creation_sends_104_then_the_file(server: SpigotProcess, version: int) -> None:
    data = os.urandom(200_000)
    ex = exchange(
        server.url,
        "POST",
        "/files/",
        {**draft(version), **complete_field(version, True), "Content-Type": "text/plain"},
        data,
    )
    assert ex.statuses == [104, 201]
    interim, answer = ex.interim[0], final(ex)
    assert interim["Upload-Draft-Interop-Version"] == str(version)
    assert answer["Upload-Draft-Interop-Version"] == str(version)
    assert interim["Location"] == answer["Location"]
    assert "upload-offset" not in interim.headers
    if version >= 6:
        age = "expires" if version == 6 else "max-age"
        limit, _, left = interim["Upload-Limit"].rpartition(f", {age}=")
        assert limit == f"max-size={64 * 1024**2}, max-append-size={32 * 1024**2}"
        assert 86390 < int(left) <= 86400
    else:
        assert "upload-limit" not in interim.headers
    assert says(answer, complete_field(version, True))
    assert answer["Upload-Offset"] == answer["Upload-Length"] == str(len(data))
    body = json.loads(answer.body)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["content_type"].startswith("text/plain")
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert answer["Repr-Digest"] == f"sha-256=:{digest}:"
    assert download(server, answer["Location"]) == data


def test_creation_without_body_answers_201_with_location(server: SpigotProcess) -> None:
    ex = exchange(server.url, "POST", "/files/", {**draft(), "Upload-Complete": "?0"})
    assert ex.statuses == [201]  # nothing to resume yet: no 104
    answer = final(ex)
    assert answer["Location"].startswith(f"{server.url}/files/")
    assert answer["Upload-Complete"] == "?0"
    assert answer["Upload-Offset"] == "0"
    assert "upload-length" not in answer.headers
    assert answer["Upload-Limit"].startswith(f"max-size={64 * 1024**2}, ")


def test_creation_records_upload_length(server: SpigotProcess) -> None:
    answer = create(server, body=b"abc", **{"Upload-Length": "10"})
    assert answer["Upload-Offset"] == "3"
    assert answer["Upload-Length"] == "10"
    assert head(server, answer["Location"])["Upload-Length"] == "10"


def test_put_creates_too(server: SpigotProcess) -> None:
    ex = exchange(
        server.url, "PUT", "/files/notes.txt", {**draft(), "Upload-Complete": "?1"}, b"hi"
    )
    assert ex.statuses == [104, 201]
    assert json.loads(final(ex).body)["name"] == "notes.txt"


def test_filename_from_content_disposition(server: SpigotProcess) -> None:
    disposition = {"Content-Disposition": 'inline; filename="../a b.jpg"'}
    ex = exchange(server.url, "POST", "/files/", {**draft(), "Upload-Complete": "?1",
                                                  **disposition}, b"x")  # fmt: skip
    assert json.loads(final(ex).body)["name"] == "a b.jpg"  # sanitized


def test_inconsistent_length_at_creation_is_a_problem(server: SpigotProcess) -> None:
    fields = {**draft(), "Upload-Complete": "?1", "Upload-Length": "10"}
    ex = exchange(server.url, "POST", "/files/", fields, b"12345")
    answer = final(ex)
    assert answer.status == 400
    assert answer["Content-Type"].startswith("application/problem+json")
    code, body = error_of(answer)
    assert code == "inconsistent_length"
    assert body["type"] == PROBLEM_BASE + "inconsistent-upload-length"


def test_creation_over_max_size_is_413_with_upload_limit(server: SpigotProcess) -> None:
    too_big = str(64 * 1024**2 + 1)
    ex = exchange(server.url, "POST", "/files/",
                  {**draft(), "Upload-Complete": "?0", "Upload-Length": too_big})  # fmt: skip
    answer = final(ex)
    assert answer.status == 413
    assert answer["Upload-Limit"].startswith(f"max-size={64 * 1024**2}")
    assert error_of(answer)[0] == "upload_too_large"


def test_append_over_max_append_size_is_413_with_upload_limit(server: SpigotProcess) -> None:
    url = create(server)["Location"]
    headers = {**draft(), "Upload-Complete": "?0", "Upload-Offset": "0", "Content-Type": PARTIAL}
    ex = exchange(server.url, "PATCH", path_of(server, url), headers, [b"x"],
                  length=32 * 1024**2 + 1, cut_after=1, pause=1.0)  # fmt: skip
    answer = final(ex)  # said before the body: the client need not send it
    assert answer.status == 413
    assert f"max-append-size={32 * 1024**2}" in answer["Upload-Limit"]


def test_unknown_version_stays_a_plain_upload(server: SpigotProcess) -> None:
    ex = exchange(server.url, "POST", "/files/", {**draft(10), "Upload-Complete": "?1"}, b"x")
    assert ex.statuses == [201]  # no 104 for a version spigot does not speak
    answer = final(ex)
    assert "upload-complete" not in answer.headers
    assert "upload-draft-interop-version" not in answer.headers
    assert json.loads(answer.body)["size"] == 1


def test_http10_gets_no_104(server: SpigotProcess) -> None:
    """HTTP/1.0 has no 1xx (h11 sends only 1.1, so this one is written by hand)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /files/ HTTP/1.0\r\nUpload-Draft-Interop-Version: 9\r\n"
            b"Upload-Complete: ?1\r\nContent-Length: 3\r\n\r\nold"
        )
        reply = read_to_end(sock, 30)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 201 ")
    assert b" 104 " not in reply
    assert b"\r\nUpload-Complete: ?1\r\n" in head + b"\r\n"
    assert json.loads(body)["size"] == 3


def test_no_104_flag(data_dir: Path) -> None:
    proc = start_spigot(data_dir, "--no-104")
    try:
        ex = exchange(proc.url, "POST", "/files/", {**draft(), "Upload-Complete": "?1"}, b"abc")
        assert ex.statuses == [201]
        assert final(ex)["Upload-Complete"] == "?1"
    finally:
        stop_spigot(proc)


# -- offset retrieval -------------------------------------------------------------------


def test_head_reports_the_state(server: SpigotProcess) -> None:
    url = create(server, body=b"12345", **{"Upload-Length": "9"})["Location"]
    answer = head(server, url)
    assert answer.status == 204
    assert answer["Upload-Offset"] == "5"
    assert answer["Upload-Complete"] == "?0"
    assert answer["Upload-Length"] == "9"
    assert answer["Cache-Control"] == "no-store"
    limit = answer["Upload-Limit"]
    assert limit.startswith(f"max-size={64 * 1024**2}, max-append-size={32 * 1024**2}, max-age=")
    assert 86390 < int(limit.rsplit("=", 1)[1]) <= 86400
    assert answer["Upload-Draft-Interop-Version"] == "9"


def test_head_of_interop_3_says_upload_incomplete(server: SpigotProcess) -> None:
    url = create(server, version=3, body=b"ab")["Location"]
    answer = head(server, url, version=3)
    assert answer["Upload-Incomplete"] == "?1"
    assert "upload-complete" not in answer.headers
    assert "upload-length" not in answer.headers  # never given


def test_head_of_unknown_upload_is_404(server: SpigotProcess) -> None:
    answer = final(exchange(server.url, "HEAD", "/files/AAAAAAAAAAAAAAAAAAAAAA", draft()))
    assert answer.status == 404


# -- append -----------------------------------------------------------------------------


def test_append_then_complete(server: SpigotProcess) -> None:
    url = create(server, body=b"hello ")["Location"]
    ex = append(server, url, 6, b"big ", complete=False)
    assert ex.statuses == [204]
    answer = final(ex)
    assert answer["Upload-Complete"] == "?0"
    assert answer["Upload-Offset"] == "10"
    done = final(append(server, url, 10, b"world", complete=True))
    assert done.status == 201
    assert done["Upload-Complete"] == "?1"
    assert done["Upload-Offset"] == "15"  # tus-js-client reads it from the last append too
    assert json.loads(done.body)["size"] == 15
    assert download(server, url) == b"hello big world"


def test_empty_append_completes(server: SpigotProcess) -> None:
    url = create(server, body=b"abc")["Location"]
    done = final(append(server, url, 3, b"", complete=True))
    assert done.status == 201
    assert done["Upload-Length"] == "3"
    assert download(server, url) == b"abc"


def test_reaching_the_length_completes_and_a_late_empty_completion_is_answered(
    server: SpigotProcess,
) -> None:
    url = create(server, body=b"ab", **{"Upload-Length": "4"})["Location"]
    assert final(append(server, url, 2, b"cd", complete=False))["Upload-Complete"] == "?1"
    late = final(append(server, url, 4, b"", complete=True))
    assert late.status == 201
    assert json.loads(late.body)["size"] == 4


def test_mismatching_offset_is_409_problem(server: SpigotProcess) -> None:
    url = create(server, body=b"12345")["Location"]
    answer = final(append(server, url, 3, b"x", complete=False))
    assert answer.status == 409
    assert answer["Upload-Offset"] == "5"
    assert answer["Content-Type"].startswith("application/problem+json")
    code, body = error_of(answer)
    assert code == "offset_mismatch"
    assert body["type"] == PROBLEM_BASE + "mismatching-upload-offset"
    assert body["expected-offset"] == 5
    assert body["provided-offset"] == 3
    assert head(server, url)["Upload-Offset"] == "5"  # nothing was written


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"Upload-Length": "12"}, "another length than at creation"),
        ({"Content-Length": "3", "Upload-Complete": "?1"}, "completes short of the length"),
    ],
)
def test_inconsistent_length_on_append_is_400_problem(
    server: SpigotProcess, fields: dict[str, str], why: str
) -> None:
    url = create(server, body=b"ab", **{"Upload-Length": "10"})["Location"]
    answer = final(append(server, url, 2, b"cde", complete=False, **fields))
    assert answer.status == 400, why
    code, body = error_of(answer)
    assert code == "inconsistent_length"
    assert body["type"] == PROBLEM_BASE + "inconsistent-upload-length"
    assert head(server, url)["Upload-Offset"] == "2"


def test_an_append_past_the_length_is_refused_before_a_byte(server: SpigotProcess) -> None:
    url = create(server, body=b"ab", **{"Upload-Length": "10"})["Location"]
    answer = final(append(server, url, 2, b"cdefghijk", complete=False))
    assert answer.status == 400
    code, body = error_of(answer)
    assert code == "inconsistent_length"
    assert body["type"] == PROBLEM_BASE + "inconsistent-upload-length"
    assert head(server, url)["Upload-Offset"] == "2"  # none of it kept
    assert final(append(server, url, 2, b"cdefghij", complete=True)).status == 201


def test_a_chunked_append_past_the_length_keeps_what_fits(server: SpigotProcess) -> None:
    url = create(server, body=b"ab", **{"Upload-Length": "10"})["Location"]
    chunked = {"Transfer-Encoding": "chunked"}  # no Content-Length to refuse it by
    answer = final(append(server, url, 2, b"cdefghijk", complete=False, **chunked))
    assert answer.status == 400
    assert answer["Content-Type"].startswith("application/problem+json")
    assert error_of(answer)[1]["type"] == PROBLEM_BASE + "inconsistent-upload-length"
    assert answer["Upload-Offset"] == "10"
    assert download(server, url) == b"abcdefghij"  # finished at its length, as tusd does


def test_append_to_completed_upload(server: SpigotProcess) -> None:
    url = create(server, body=b"ab")["Location"]
    final(append(server, url, 2, b"", complete=True))
    more = final(append(server, url, 2, b"c", complete=True))
    assert more.status == 400
    assert error_of(more)[1]["type"] == PROBLEM_BASE + "inconsistent-upload-length"
    empty = final(append(server, url, 2, b"", complete=False))
    assert empty.status == 400
    assert error_of(empty)[1]["type"] == PROBLEM_BASE + "completed-upload"


@pytest.mark.parametrize("version", [6, 9])
def test_append_needs_partial_upload_type_from_version_6(
    server: SpigotProcess, version: int
) -> None:
    url = create(server, version=version)["Location"]
    headers = {**draft(version), "Upload-Complete": "?1", "Upload-Offset": "0",
               "Content-Type": "application/offset+octet-stream"}  # fmt: skip
    answer = final(exchange(server.url, "PATCH", path_of(server, url), headers, b"x"))
    assert answer.status == 415
    assert error_of(answer)[0] == "unsupported_media_type"


def test_version_5_appends_need_no_type(server: SpigotProcess) -> None:
    url = create(server, version=5)["Location"]
    headers = {**draft(5), "Upload-Complete": "?1", "Upload-Offset": "0"}
    answer = final(exchange(server.url, "PATCH", path_of(server, url), headers, b"xyz"))
    assert answer.status == 201
    assert answer["Upload-Complete"] == "?1"


@pytest.mark.parametrize("missing", ["Upload-Offset", "Upload-Complete"])
def test_append_needs_offset_and_completeness(server: SpigotProcess, missing: str) -> None:
    url = create(server)["Location"]
    headers = {**draft(), "Upload-Complete": "?1", "Upload-Offset": "0", "Content-Type": PARTIAL}
    del headers[missing]
    answer = final(exchange(server.url, "PATCH", path_of(server, url), headers, b"x"))
    assert answer.status == 400
    assert error_of(answer)[0] == "bad_header"
    assert missing in json.loads(answer.body)["error"]["message"]


def test_content_digest_mismatch_keeps_nothing(server: SpigotProcess) -> None:
    url = create(server, body=b"ab")["Location"]
    wrong = base64.b64encode(hashlib.sha256(b"not it").digest()).decode()
    answer = final(append(server, url, 2, b"cd", complete=False,
                          **{"Content-Digest": f"sha-256=:{wrong}:"}))  # fmt: skip
    assert answer.status == 400
    assert error_of(answer)[0] == "digest_mismatch"
    assert head(server, url)["Upload-Offset"] == "2"
    right = base64.b64encode(hashlib.sha512(b"cd").digest()).decode()
    ok = final(append(server, url, 2, b"cd", complete=False,
                      **{"Content-Digest": f"sha-512=:{right}:"}))  # fmt: skip
    assert ok.status == 204
    assert ok["Upload-Offset"] == "4"


def test_repr_digest_is_checked_on_completion(server: SpigotProcess) -> None:
    repr_digest_checked(server)


def repr_digest_checked(server: SpigotProcess) -> Answer:
    """A creation's Repr-Digest: the matching upload completes with it (its answer is
    returned), and a mismatching one is removed (tests/test_checksum.py checks it too)."""
    good = base64.b64encode(hashlib.sha256(b"abcd").digest()).decode()
    url = create(server, body=b"ab", **{"Repr-Digest": f"sha-256=:{good}:"})["Location"]
    done = final(append(server, url, 2, b"cd", complete=True))
    assert done.status == 201
    assert done["Repr-Digest"] == f"sha-256=:{good}:"

    url = create(server, body=b"ab", **{"Repr-Digest": f"sha-256=:{good}:"})["Location"]
    bad = final(append(server, url, 2, b"XX", complete=True))
    assert bad.status == 400
    assert bad["Upload-Complete"] == "?1"  # it arrived whole; processing it failed
    assert error_of(bad)[0] == "digest_mismatch"
    assert head(server, url).status == 410  # removed, not left to be downloaded
    return done


# -- progress, take-over, cancellation --------------------------------------------------


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("version", [4, 9])
def test_progress_104s_during_one_long_body(server: SpigotProcess, version: int) -> None:
    data = os.urandom(12 * 256 * 1024)
    ex = exchange(
        server.url, "POST", "/files/",
        {**draft(version), **complete_field(version, True)},
        pieces(data, 256 * 1024), pause=0.3,
    )  # fmt: skip
    assert final(ex).status == 201
    first, progress = ex.interim[0], ex.interim[1:]
    assert "location" in first.headers
    if version < 5:  # progress 104s came in with draft -03
        assert progress == []
        return
    assert len(progress) >= 2, ex.statuses
    offsets = [int(p["Upload-Offset"]) for p in progress]
    assert offsets == sorted(set(offsets))
    assert offsets[0] > 0 and offsets[-1] <= len(data)
    assert all("location" not in p.headers for p in progress)
    assert all(p["Upload-Draft-Interop-Version"] == str(version) for p in progress)
    # At most one a second. Counted over the whole body rather than between arrivals: a
    # busy machine may deliver two at once, though they were sent a second apart.
    took = final(ex).at - first.at
    assert len(progress) <= took + 1, (len(progress), took)
    assert download(server, final(ex)["Location"]) == data


@pytest.mark.parametrize("version", [3, 9])
def test_resume_after_the_connection_is_cut(server: SpigotProcess, version: int) -> None:
    data = os.urandom(3 * 1024 * 1024 + 11)
    cut = 1024 * 1024 + 5
    ex = exchange(
        server.url, "POST", "/files/", {**draft(version), **complete_field(version, True)},
        pieces(data, 128 * 1024), length=len(data), cut_after=cut, pause=0.2,
    )  # fmt: skip
    assert ex.final is None and ex.interim, ex
    url = ex.interim[0]["Location"]
    time.sleep(0.5)  # the server reads to the cut and stores what came
    state = head(server, url, version)
    assert state.status == 204
    offset = int(state["Upload-Offset"])
    # Every byte sent, unless the HEAD took over before the server had read them all (it
    # may, on a busy machine): then fewer, and the client sends those again.
    assert 0 < offset <= cut
    assert says(state, complete_field(version, False))
    done = final(append(server, url, offset, data[offset:], complete=True, version=version))
    assert done.status == 201
    assert download(server, url) == data


@contextlib.contextmanager
def silent_append(server: SpigotProcess, url: str) -> Iterator[list[Exchange]]:
    """A PATCH that sends 1000 bytes, then nothing for 4 s (its client thinks it dead); on
    leaving, its exchange is in the list."""
    headers = {**draft(), "Upload-Complete": "?1", "Upload-Offset": "0", "Content-Type": PARTIAL}
    results: list[Exchange] = []
    silent = threading.Thread(
        target=lambda: results.append(
            exchange(server.url, "PATCH", path_of(server, url), headers, [b"a" * 1000, b"b" * 1000],
                     cut_after=1000, pause=4.0)
        )
    )  # fmt: skip
    silent.start()
    time.sleep(0.5)
    try:
        yield results
    finally:
        silent.join()


def was_taken_over(results: list[Exchange]) -> None:
    ended = final(results[0])  # the old request is ended, keeping its bytes, and told so
    assert (ended.status, error_of(ended)[0]) == (423, "upload_taken_over")


def test_a_new_request_takes_over_a_silent_one(server: SpigotProcess) -> None:
    url = create(server)["Location"]
    with silent_append(server, url) as results:
        started = time.monotonic()
        state = head(server, url)  # the client's retry, while its first request hangs
        assert time.monotonic() - started < 3.0  # not the 4 s the silent client waits
    assert state.status == 204
    kept = int(state["Upload-Offset"])
    assert 0 < kept <= 1000  # what the server had read of the 1000 sent (all, unless busy)
    was_taken_over(results)
    whole = b"a" * 1000 + b"c" * 1000
    done = final(append(server, url, kept, whole[kept:], complete=True))
    assert done.status == 201
    assert download(server, url) == whole


def test_delete_cancels_and_ends_the_running_request(server: SpigotProcess) -> None:
    url = create(server)["Location"]
    with silent_append(server, url) as results:
        started = time.monotonic()
        gone = final(exchange(server.url, "DELETE", path_of(server, url), draft()))
        assert time.monotonic() - started < 3.0  # not the 4 s the silent client waits
    assert gone.status == 204
    was_taken_over(results)
    assert head(server, url).status == 410


# -- limits (OPTIONS) and access ---------------------------------------------------------


@pytest.mark.parametrize("version", [6, 9])
def test_options_announces_the_limits(server: SpigotProcess, version: int) -> None:
    answer = final(exchange(server.url, "OPTIONS", "/files/", draft(version)))
    assert answer.status == 204
    assert "application/partial-upload" in answer["Accept-Patch"]
    age = "expires" if version == 6 else "max-age"
    assert answer["Upload-Limit"] == (
        f"max-size={64 * 1024**2}, max-append-size={32 * 1024**2}, {age}=86400"
    )
    assert answer["Upload-Draft-Interop-Version"] == str(version)


JWT_KEY = "rufh-test-jwt-key-0123456789abcdefghijkl"


def bearer(sub: str) -> dict[str, str]:
    claims = {"sub": sub, "scope": "upload read", "exp": int(time.time()) + 600}
    return {"Authorization": f"Bearer {jwt.encode(claims, JWT_KEY, algorithm='HS256')}"}


def test_auth_and_ownership_apply(data_dir: Path) -> None:
    proc = start_spigot(data_dir, "--auth", "jwt", env={"SPIGOT_JWT_KEY": JWT_KEY})
    try:
        anonymous = exchange(proc.url, "POST", "/files/", {**draft(), "Upload-Complete": "?1"},
                             b"x")  # fmt: skip
        assert anonymous.statuses == [401]  # refused before any upload exists: no 104
        mine = exchange(proc.url, "POST", "/files/",
                        {**draft(), "Upload-Complete": "?0", **bearer("alice")}, b"ab")  # fmt: skip
        url = path_of(proc, final(mine)["Location"])
        theirs = exchange(proc.url, "HEAD", url, {**draft(), **bearer("bob")})
        assert final(theirs).status == 404  # another's upload is not there for bob
        state = exchange(proc.url, "HEAD", url, {**draft(), **bearer("alice")})
        assert final(state)["Upload-Offset"] == "2"
    finally:
        stop_spigot(proc)
