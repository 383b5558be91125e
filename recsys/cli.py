"""The ``recsys`` command. Each package plugs its subcommands in through the
``recsys.commands`` entry-point group (see pyproject.toml), so this pure library never imports
training or serving."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from recsys import __version__
from recsys.data.errors import DataContractError

DESCRIPTION = """\
Style-aware cross-selling for home e-commerce.

Typical flow:
  recsys sample-data --out data/sample          # or: recsys import-online-retail FILE --out DIR
  recsys train --catalog data/sample/catalog.parquet --interactions data/sample/interactions.parquet
  recsys serve                                  # API on http://127.0.0.1:8000 (docs at /docs)

Run `recsys COMMAND --help` for the options of one command."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recsys", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for ep in sorted(entry_points(group="recsys.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:  # a package not installed yet must not break the others
            logging.getLogger(__name__).debug("commands %s unavailable: %s", ep.name, exc)
            continue
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # faiss logs every CPU-feature probe at INFO; users only need to hear about failures
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except DataContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
