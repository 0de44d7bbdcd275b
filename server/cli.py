"""The `spigot` command (also `python -m server`)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from storage.errors import StorageUnavailable

from .auth.exposure import exposure_problem
from .protocol import links
from .protocol.signing import signed_query
from .protocol.ssrf import Refused, check_url
from .settings import SettingError, Settings, parse_duration, parse_size

log = logging.getLogger("spigot")


class _OneLineParser(argparse.ArgumentParser):
    """Bad usage gets one line and exit status 2, like every other bad value here."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="spigot", description="Streaming server for very large files.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    serve = commands.add_parser("serve", help="run the HTTP server")
    add_settings(serve)
    sign = commands.add_parser("sign-url", help="print a signed /proxy link for a URL")
    sign.add_argument("url", help="the upstream URL (http or https)")
    sign.add_argument(
        "--expires-in", default="24h", help="how long the link stays valid (default 24h)"
    )
    add_settings(sign)
    sign_file = commands.add_parser("sign", help="print a signed download link to a file")
    sign_file.add_argument("file_id", help="the file's id")
    sign_file.add_argument(
        "--expires-in", default="1h", help="how long the link stays valid (default 1h)"
    )
    add_settings(sign_file)
    sign_upload = commands.add_parser(
        "sign-upload", help="print an upload link: curl -T, a form or a tus client, no token"
    )
    sign_upload.add_argument("--max-size", required=True, help="largest upload, e.g. 2GiB")
    sign_upload.add_argument(
        "--expires-in", default="1h", help="how long the link stays valid (default 1h)"
    )
    sign_upload.add_argument("--type", dest="upload_type", help="only this type, e.g. video/*")
    sign_upload.add_argument("--owner", help="who the uploads will belong to")
    add_settings(sign_upload)
    up = commands.add_parser("upload", help="upload files, resumably (tus), with progress")
    up.add_argument("files", nargs="+", type=Path, help="the files")
    up.add_argument("--server", required=True, help="spigot's URL, or an upload link")
    add_transfer_options(up)
    down = commands.add_parser("download", help="download a file in parallel ranges, resumably")
    down.add_argument("url", help="the file's URL (or a signed download link)")
    down.add_argument("-o", "--output", type=Path, help="where to write it (default: its id)")
    add_transfer_options(down)
    s3 = commands.add_parser("s3", help="bucket set-up for direct uploads")
    s3_commands = s3.add_subparsers(dest="s3_command", required=True, parser_class=_OneLineParser)
    cors = s3_commands.add_parser("cors", help="write (or --check) the bucket CORS browsers need")
    cors.add_argument(
        "--origin", action="append", required=True, help="a browser origin (repeatable)"
    )
    cors.add_argument("--check", action="store_true", help="only report what is missing")
    add_settings(cors)
    return parser


def add_transfer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", help="a bearer token [env SPIGOT_TOKEN]")
    parser.add_argument("-j", "--jobs", type=int, default=4, help="transfers or ranges at once")
    parser.add_argument(
        "--limit-rate", default="0", help="at most this many bytes a second, e.g. 10MB (as curl)"
    )


def add_settings(parser: argparse.ArgumentParser) -> None:
    for opt in Settings.options():
        help_text = f"{opt.metadata['help']} [env SPIGOT_{opt.name.upper()}]"
        if opt.metadata["flag"]:
            parser.add_argument(
                "--" + opt.name.replace("_", "-"),
                dest=opt.name,
                action="store_const",
                const="1",
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                "--" + opt.name.replace("_", "-"),
                dest=opt.name,
                default=None,
                metavar=opt.metadata["metavar"] or None,
                help=help_text,
            )


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("upload", "download"):
        raise SystemExit(transfer(parser, args))
    try:
        settings = Settings.resolve(vars(args), os.environ)
    except SettingError as exc:
        parser.exit(2, f"spigot: error: {exc}\n")
    if args.command == "sign-url":
        print(sign_url(settings, args.url, args.expires_in))
        return
    if args.command == "sign":
        print(sign_file(settings, args.file_id, args.expires_in))
        return
    if args.command == "sign-upload":
        print(sign_upload(settings, args))
        return
    if args.command == "s3":
        raise SystemExit(bucket_cors(settings, args.origin, args.check))
    if args.command == "serve":
        if (problem := exposure_problem(settings)) is not None:
            parser.exit(2, f"spigot: error: {problem}\n")
        if settings.import_token:
            print(
                "spigot: warning: --import-token is deprecated; use --auth jwt with the "
                "import scope",
                file=sys.stderr,
            )
        # Imported only now: with --workers, prometheus_client must not be loaded before
        # the parent has chosen where the workers keep their samples (serving/workers.py).
        from .serving import logs, run

        try:
            run(settings)
        except StorageUnavailable as exc:  # no such bucket, credentials refused, ...
            logs.flush()
            parser.exit(1, f"spigot: error: storage {settings.storage}: {exc}\n")
        except OSError as exc:  # port in use, storage not writable, ...
            logs.flush()
            parser.exit(1, f"spigot: error: {exc}\n")


def signing_key(settings: Settings, command: str) -> str:
    if not settings.secret:
        raise SystemExit(f"spigot: error: {command} needs SPIGOT_SECRET (or --secret)")
    return settings.secret[0]


def expiry(expires_in: str) -> int:
    try:
        return int(time.time() + parse_duration(expires_in))
    except SettingError as exc:
        raise SystemExit(f"spigot: error: --expires-in: {exc}") from None


def base_url(settings: Settings) -> str:
    return settings.public_url or f"http://{settings.host}:{settings.port}"


def sign_url(settings: Settings, url: str, expires_in: str) -> str:
    key = signing_key(settings, "sign-url")
    try:
        check_url(url)
    except Refused as exc:
        raise SystemExit(f"spigot: error: {exc}") from None
    return f"{base_url(settings)}/proxy?{signed_query(key, url, expiry(expires_in))}"


def sign_file(settings: Settings, file_id: str, expires_in: str) -> str:
    key = signing_key(settings, "sign")
    query = links.file_query(key, links.DOWNLOAD, file_id, expiry(expires_in))
    return f"{base_url(settings)}/files/{file_id}?{query}"


def sign_upload(settings: Settings, args: argparse.Namespace) -> str:
    key = signing_key(settings, "sign-upload")
    try:
        terms = links.UploadTerms(
            max_size=parse_size(args.max_size), owner=args.owner, type=args.upload_type
        )
        query = links.upload_query(key, terms, expiry(args.expires_in))
    except (SettingError, ValueError) as exc:
        raise SystemExit(f"spigot: error: {exc}") from None
    return f"{base_url(settings)}/files/?{query}"


def transfer(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """`spigot upload` and `spigot download`: 0 when done, 1 when a transfer failed."""
    from .client.download import download
    from .client.progress import board
    from .client.upload import TransferFailed, upload

    try:
        rate = parse_size(args.limit_rate)
    except SettingError as exc:
        parser.exit(2, f"spigot: error: --limit-rate: {exc}\n")
    token = args.token or os.environ.get("SPIGOT_TOKEN")
    try:
        with board() as progress:
            if args.command == "upload":
                for done in upload(args.files, args.server, token, args.jobs, rate, progress):
                    resumed = f", resumed at {done.resumed_at}" if done.resumed_at else ""
                    print(f"{done.url}\t{done.path}\tsent {done.sent} bytes{resumed}", flush=True)
            else:
                output = args.output or Path(args.url.split("?", 1)[0].rstrip("/").rsplit("/")[-1])
                resumed_at, digest = download(args.url, output, token, args.jobs, rate, progress)
                checked = f"sha256 {digest} checked" if digest else "no sha256 to check"
                resumed = f", resumed at {resumed_at}" if resumed_at else ""
                print(f"{output}\t{checked}{resumed}", flush=True)
    except TransferFailed as exc:
        print(f"spigot: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("spigot: interrupted; run the same command again to resume", file=sys.stderr)
        return 1
    return 0


def bucket_cors(settings: Settings, origins: list[str], check: bool) -> int:
    """`spigot s3 cors`: 0 when the bucket is (now) right, 1 when --check found gaps."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from .presign import cors
    from .settings import parse_origins

    if settings.s3_location is None:
        raise SystemExit("spigot: error: s3 cors needs --storage s3://bucket/prefix")
    try:
        wanted = parse_origins(",".join(origins))
    except SettingError as exc:
        raise SystemExit(f"spigot: error: --origin: {exc}") from None
    bucket = settings.s3_location[0]
    client = boto3.client("s3", endpoint_url=settings.s3_endpoint_url)
    try:
        if not check:
            cors.apply(client, bucket, wanted)
        rules = cors.current_rules(client, bucket)
    except (BotoCoreError, ClientError) as exc:
        raise SystemExit(f"spigot: error: bucket {bucket}: {exc}") from None
    missing = [f"{o}: {p}" for o in wanted for p in cors.problems(rules, o)]
    for line in missing:
        print(f"missing: {line}")
    if not missing:
        print(f"bucket {bucket}: CORS is ready for direct uploads from {', '.join(wanted)}")
    return 1 if missing else 0


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
