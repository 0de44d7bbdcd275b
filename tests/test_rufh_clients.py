"""Real clients speaking the IETF resumable-upload draft: tus-js-client under Node (its
'ietf-draft-03' and 'ietf-draft-05' protocols, abort then resume included), and curl,
whose `-i` shows the 104 before the final response, as the README's walk-through does."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.conftest import SpigotProcess, file_sha256, sha256, write_random
from tests.test_tus_js import node_test
from tests.tools import require


def test_tus_js_client_in_ietf_modes(spigot: SpigotProcess) -> None:
    node_test(spigot, "ietf.test.mjs", 4)


def curl(*args: str) -> str:
    result = subprocess.run(
        [require("curl"), "-sS", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def heads(output: str) -> list[tuple[int, dict[str, str]]]:
    """Each response head in curl -i output, in order: its status and fields."""
    found = []
    for block in re.split(r"\r?\n\r?\n", output):
        lines = block.splitlines()
        match = re.match(r"HTTP/1\.1 (\d{3})", lines[0]) if lines else None
        if match:
            fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            found.append((int(match.group(1)), {k.lower(): v for k, v in fields.items()}))
    return found


def test_curl_shows_the_104_and_the_final_response(spigot: SpigotProcess, tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    digest = write_random(source, 3 * 1024 * 1024)  # past curl's Expect: 100-continue size
    out = curl(
        "-i",
        "-X",
        "POST",
        "-H",
        "Upload-Draft-Interop-Version: 9",
        "-H",
        "Upload-Complete: ?1",
        "-H",
        "Content-Type: image/jpeg",
        "--data-binary",
        f"@{source}",
        f"{spigot.url}/files/",
    )
    statuses = [status for status, _ in heads(out)]
    assert statuses == [100, 104, 201]  # the 100 the draft says a 104 must not replace
    (_, interim), (_, answer) = heads(out)[1:]
    assert interim["location"] == answer["location"]
    assert answer["upload-complete"] == "?1"
    assert json.loads(re.split(r"\r?\n\r?\n", out)[-1])["sha256"] == digest


def test_readme_walk_through(spigot: SpigotProcess, tmp_path: Path) -> None:
    """README, "Resumable uploads over plain HTTP": create, send a part, ask, send the
    rest."""
    source = tmp_path / "big.iso"
    digest = write_random(source, 2 * 1024 * 1024 + 3)
    first = tmp_path / "first"
    first.write_bytes(source.read_bytes()[: 1024 * 1024])
    draft = ("-H", "Upload-Draft-Interop-Version: 9")
    created = curl("-i", "-X", "POST", *draft, "-H", "Upload-Complete: ?0",
                   "--data-binary", f"@{first}", f"{spigot.url}/files/")  # fmt: skip
    status, fields = heads(created)[-1]
    assert status == 201 and fields["upload-offset"] == str(1024 * 1024)
    url = fields["location"]
    state = heads(curl("-I", *draft, url))[-1]
    assert state[0] == 204
    offset = int(state[1]["upload-offset"])
    rest = tmp_path / "rest"
    rest.write_bytes(source.read_bytes()[offset:])
    done = curl("-i", "-X", "PATCH", *draft, "-H", "Upload-Complete: ?1",
                "-H", f"Upload-Offset: {offset}", "-H", "Content-Type: application/partial-upload",
                "--data-binary", f"@{rest}", url)  # fmt: skip
    assert heads(done)[-1][0] == 201
    back = tmp_path / "back"
    curl("-o", str(back), url)
    assert file_sha256(back) == digest
    assert sha256(back.read_bytes()) == digest
