"""The one argument parser shared by every job: ``--config FILE`` and repeatable ``--set section.key=value``."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .config import Config, ConfigError, load_config


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (see conf/w2v.toml)")
    parser.add_argument("--set", dest="overrides", metavar="SECTION.KEY=VALUE", action="append", default=[],
                        help="override one setting, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--resume", action="store_true",
                        help="continue training from the newest complete checkpoint (same as train.resume=true)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (same as output.overwrite=true)")
    return parser


def parse_config(description: str, argv: Sequence[str] | None = None) -> Config:
    """Parse the command line into a :class:`Config`; bad settings exit with a one-line error, code 2."""
    args = build_parser(description).parse_args(argv)
    overrides = (list(args.overrides) + (["train.resume=true"] if args.resume else [])
                 + (["output.overwrite=true"] if args.overwrite else []))
    try:
        return load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def run_job(description: str, app_name: str, stage, argv: Sequence[str] | None = None) -> None:
    """Parse the command line, build the SparkSession, run ``stage(spark, cfg)``, stop the session.

    User errors (bad input, settings or output location) print one line and exit with status 2, without a
    JVM stack trace.
    """
    from .errors import UserError
    from .session import build_spark

    cfg = parse_config(description, argv)
    spark = build_spark(app_name)
    try:
        stage(spark, cfg)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        spark.stop()
