"""Command line: `docmill serve`, `docmill worker`, `docmill run` (one op on local files).

Every setting is a flag mirroring its `DOCMILL_*` variable; flags win over the environment.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

from docmill.config import ConfigurationError, Settings


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    for item in fields(Settings):
        flag = "--" + item.name.replace("_", "-")
        help_text = f"{item.metadata.get('help', '')} (env DOCMILL_{item.name.upper()})"
        if item.type in ("bool", bool):
            parser.add_argument(flag, action="store_const", const=True, default=None,
                                dest=item.name, help=help_text)
        else:
            parser.add_argument(flag, default=None, dest=item.name, metavar=item.name.upper(),
                                help=help_text)


def _settings_from(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    for item in fields(Settings):
        value = getattr(args, item.name, None)
        if value is not None:
            settings.set(item.name, value)
    return settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="docmill", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API and the worker processes")
    _add_setting_flags(serve)
    serve.add_argument("--no-workers", action="store_true", help="API only (cluster API node)")

    worker = commands.add_parser("worker", help="run worker processes only")
    _add_setting_flags(worker)
    worker.add_argument("--concurrency", type=int, default=None,
                        help="worker processes (default: --workers)")

    run = commands.add_parser("run", help="run one operation on local files, no server")
    run.add_argument("operation", help="operation name, e.g. pdf_to_text; 'list' lists them")
    run.add_argument("inputs", nargs="*", type=Path, help="input files")
    run.add_argument("--out", type=Path, default=Path("."), help="output directory")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="an operation parameter, e.g. pages=0-2 or profiles={...}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run_command(args)
    except ConfigurationError as error:
        print(f"docmill: {error}", file=sys.stderr)
        return 2


def _run_command(args: argparse.Namespace) -> int:
    if args.command == "serve":
        from docmill.server import serve

        serve(_settings_from(args), run_workers=not args.no_workers)
    elif args.command == "worker":
        from docmill.server import run_workers_only

        settings = _settings_from(args)
        run_workers_only(settings, args.concurrency or settings.workers)
    elif args.command == "run":
        return _run_operation(args)
    return 0


def _run_operation(args: argparse.Namespace) -> int:
    from docmill.errors import DocmillError
    from docmill.operation import operations

    ops = operations()
    if args.operation == "list" or args.operation not in ops:
        for op in ops.values():
            print(f"{op.name:16} {', '.join(op.paths):40} {op.summary}")
        return 0 if args.operation == "list" else 2
    op = ops[args.operation]
    raw = dict(item.split("=", 1) for item in args.param)
    try:
        params = op.params.model_validate(raw)
        args.out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=args.out) as scratch:
            result = op.run(list(args.inputs), params, Path(scratch))
            moved = [str(path.replace(args.out / path.name)) for path in result.files]
    except DocmillError as error:
        print(json.dumps(error.envelope()), file=sys.stderr)
        return 1
    print(json.dumps({"files": moved, "pageCount": result.page_count}))
    return 0
