"""Real clients (curl, wget, aria2c from Debian) against a real `spigot serve` process."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SpigotProcess, assert_byteranges, file_sha256, stored_files, write_random
from tests.tools import require

SIZE = 24 * 1024 * 1024 + 12345  # several write buffers, and not a round number


def run(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("src") / "big file.iso"
    return path, write_random(path, SIZE)


def curl_upload(*args: str) -> dict[str, object]:
    result = run(require("curl"), "-sS", "--fail-with-body", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def download(spigot: SpigotProcess, file_id: object, dest: Path) -> str:
    result = run(require("curl"), "-sS", "--fail", "-o", str(dest), f"{spigot.url}/files/{file_id}")
    assert result.returncode == 0, result.stderr
    return file_sha256(dest)


def test_curl_upload_forms(spigot: SpigotProcess, source: tuple[Path, str], tmp_path: Path) -> None:
    path, digest = source
    forms = {
        "put -T": ["-T", str(path), f"{spigot.url}/files/"],
        "post --data-binary": ["--data-binary", f"@{path}", f"{spigot.url}/files/?name=a.iso"],
        "chunked -T": ["-H", "Transfer-Encoding: chunked", "-T", str(path), f"{spigot.url}/files/"],
        "chunked post": [
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            f"@{path}",
            f"{spigot.url}/files/?name=c.iso",
        ],
        "multipart -F": ["-F", f"file=@{path}", f"{spigot.url}/files/"],
    }
    for label, args in forms.items():
        doc = curl_upload(*args)
        assert doc["size"] == SIZE, label
        assert doc["sha256"] == digest, label
        assert download(spigot, doc["id"], tmp_path / "out") == digest, label
    assert doc["name"] == "big file.iso"


def test_curl_with_a_content_digest(spigot: SpigotProcess, tmp_path: Path) -> None:
    """`curl -T` with the file's RFC 9530 digest: kept when it matches, refused when not,
    and the refused one leaves nothing behind."""
    path = tmp_path / "digested.bin"
    digest = write_random(path, 3 * 1024 * 1024)  # past curl's Expect: 100-continue size
    field = base64.b64encode(bytes.fromhex(digest)).decode()
    doc = curl_upload("-H", f"Content-Digest: sha-256=:{field}:", "-T", str(path),
                      f"{spigot.url}/files/")  # fmt: skip
    assert doc["sha256"] == digest
    other = base64.b64encode(bytes(32)).decode()
    wrong = f"Content-Digest: sha-256=:{other}:"
    result = run(require("curl"), "-sS", "-w", "\n%{http_code}", "-H", wrong, "-T", str(path),
                 f"{spigot.url}/files/")  # fmt: skip
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "400" and json.loads(body)["error"]["code"] == "digest_mismatch"
    listed = run(require("curl"), "-sS", f"{spigot.url}/files/").stdout
    assert [f["id"] for f in json.loads(listed)] == [doc["id"]]  # the refused one is gone


def test_curl_with_a_content_md5(spigot: SpigotProcess, tmp_path: Path) -> None:
    """`curl -T` with the Content-MD5 S3 clients send: kept when it matches, refused when
    not, and the refused one leaves nothing behind."""
    path = tmp_path / "summed.bin"
    digest = write_random(path, 3 * 1024 * 1024)
    md5 = base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()
    doc = curl_upload("-H", f"Content-MD5: {md5}", "-T", str(path), f"{spigot.url}/files/")
    assert doc["sha256"] == digest
    wrong = "Content-MD5: " + base64.b64encode(bytes(16)).decode()
    result = run(require("curl"), "-sS", "-w", "\n%{http_code}", "-H", wrong, "-T", str(path),
                 f"{spigot.url}/files/")  # fmt: skip
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "400" and json.loads(body)["error"]["code"] == "digest_mismatch"
    listed = run(require("curl"), "-sS", f"{spigot.url}/files/").stdout
    assert [f["id"] for f in json.loads(listed)] == [doc["id"]]


def test_curl_data_is_stored_as_sent(spigot: SpigotProcess, tmp_path: Path) -> None:
    """curl --data strips newlines and sends x-www-form-urlencoded; we store exactly that."""
    text = tmp_path / "form.txt"
    text.write_bytes(b"a=1&b=2\nline two\r\n%zz")
    doc = curl_upload("--data", f"@{text}", f"{spigot.url}/files/?name=form.txt")
    out = tmp_path / "back"
    download(spigot, doc["id"], out)
    assert out.read_bytes() == b"a=1&b=2line two%zz"


def test_curl_413_over_cap_sends_no_body(tmp_path: Path, data_dir: Path) -> None:
    from tests.conftest import start_spigot, stop_spigot

    big = tmp_path / "big"
    write_random(big, 3 * 1024 * 1024)
    server = start_spigot(data_dir, "--max-request-size", "1MiB")
    try:
        result = run(
            require("curl"), "-sS", "-w", "\n%{http_code}", "-T", str(big), f"{server.url}/files/"
        )
        body, code = result.stdout.rsplit("\n", 1)
        assert code == "413"
        assert json.loads(body)["error"]["code"] == "too_large"
        chunked = run(
            require("curl"),
            "-sS",
            "-w",
            "\n%{http_code}",
            "-H",
            "Transfer-Encoding: chunked",
            "-T",
            str(big),
            f"{server.url}/files/",
        )
        assert chunked.stdout.rsplit("\n", 1)[1] == "413"
    finally:
        stop_spigot(server)
    assert stored_files(data_dir) == []


def partial_copy(source: Path, dest: Path, size: int) -> None:
    with open(source, "rb") as f:
        dest.write_bytes(f.read(size))


def test_curl_resume(spigot: SpigotProcess, source: tuple[Path, str], tmp_path: Path) -> None:
    path, digest = source
    doc = curl_upload("-T", str(path), f"{spigot.url}/files/")
    out = tmp_path / "resumed"
    partial_copy(path, out, 7_000_001)
    result = run(
        require("curl"),
        "-sS",
        "--fail",
        "-C",
        "-",
        "-o",
        str(out),
        f"{spigot.url}/files/{doc['id']}",
    )
    assert result.returncode == 0, result.stderr
    assert file_sha256(out) == digest


def test_wget_continue(spigot: SpigotProcess, source: tuple[Path, str], tmp_path: Path) -> None:
    path, digest = source
    doc = curl_upload("-T", str(path), f"{spigot.url}/files/")
    out = tmp_path / "wget-out"
    partial_copy(path, out, 5_555_555)
    result = run(require("wget"), "-q", "-c", "-O", str(out), f"{spigot.url}/files/{doc['id']}")
    assert result.returncode == 0, result.stderr
    assert file_sha256(out) == digest


def test_aria2c_segmented(spigot: SpigotProcess, source: tuple[Path, str], tmp_path: Path) -> None:
    path, digest = source
    doc = curl_upload("-T", str(path), f"{spigot.url}/files/")
    result = run(
        require("aria2c"),
        "-x8",
        "-s8",
        "--min-split-size=1M",
        "--file-allocation=none",
        "--console-log-level=warn",
        "--summary-interval=0",
        "-d",
        str(tmp_path),
        "-o",
        "aria.out",
        f"{spigot.url}/files/{doc['id']}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert file_sha256(tmp_path / "aria.out") == digest


def aria2c_get(url: str, dest: Path) -> subprocess.CompletedProcess[str]:
    return run(require("aria2c"), "-x4", "-s4", "--min-split-size=1M", "--file-allocation=none",
               "--summary-interval=0", "--allow-overwrite=true", "-d", str(dest.parent),
               "-o", dest.name, url)  # fmt: skip


def test_aria2c_checks_the_file_against_spigots_digest(tmp_path: Path, data_dir: Path) -> None:
    """aria2c sends `Want-Digest` with every request and checks the file it put together
    from its segments against the `Digest` it gets back (RFC 3230): bytes that changed on
    spigot's disk after the upload are an error, not a downloaded file."""
    from tests.conftest import start_spigot, stop_spigot

    path = tmp_path / "checked.bin"
    digest = write_random(path, 5 * 1024 * 1024)
    server = start_spigot(data_dir)
    try:
        doc = curl_upload("-T", str(path), f"{server.url}/files/")
        url = f"{server.url}/files/{doc['id']}"
        good = aria2c_get(url, tmp_path / "good.bin")
        assert good.returncode == 0, good.stdout + good.stderr
        assert file_sha256(tmp_path / "good.bin") == digest
        with open(data_dir / str(doc["id"]), "r+b") as stored:  # one byte flips on disk
            stored.seek(3 << 20)
            byte = stored.read(1)
            stored.seek(3 << 20)
            stored.write(bytes([byte[0] ^ 0xFF]))
        bad = aria2c_get(url, tmp_path / "bad.bin")
        assert bad.returncode == 32, bad.stdout + bad.stderr  # aria2's checksum error
        assert "Checksum error detected" in bad.stdout
    finally:
        stop_spigot(server)


def test_curl_multi_range(spigot: SpigotProcess, source: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = source
    doc = curl_upload("-T", str(path), f"{spigot.url}/files/")
    result = subprocess.run(
        [
            require("curl"),
            "-sS",
            "-r",
            "0-9,1000-1009",
            "-D",
            "-",
            f"{spigot.url}/files/{doc['id']}",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206 ")
    content_type = next(
        line.split(b":", 1)[1].strip().decode()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-type:")
    )
    assert_byteranges(content_type, body, path.read_bytes(), [(0, 10), (1000, 1010)])
