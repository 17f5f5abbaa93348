"""The `labkit` command: doctor | models | train | run | progress.

Each subcommand imports its module only when called, so `labkit --help` stays instant.
"""

from __future__ import annotations

import argparse
import sys


def _doctor(args: argparse.Namespace) -> int:
    from labkit.doctor import main

    return main(load_models=not args.quick)


def _models(args: argparse.Namespace) -> int:
    from labkit import models

    if args.action == "prepare":
        for name in args.names or list(models.EMBEDDED):
            path, cached = models.prepare(name)
            print(f"{name}: {'already cached' if cached else 'converted'} at {path}")
        return 0
    for name, entry in models.EMBEDDED.items():
        print(f"{name:<24} {entry.kind:<10} {entry.description}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from labkit.train import cli_train

    return cli_train(args)


def _run(args: argparse.Namespace) -> int:
    from labkit.experiments import cli_run

    return cli_run(args)


def _progress(args: argparse.Namespace) -> int:
    from labkit.progress import cli_progress

    return cli_progress(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="check this machine: libraries, CPU features, models")
    p.add_argument("--quick", action="store_true", help="skip loading the models")
    p.set_defaults(func=_doctor)

    p = sub.add_parser("models", help="list or prepare the embedded models")
    p.add_argument("action", nargs="?", choices=("list", "prepare"), default="list")
    p.add_argument("names", nargs="*")
    p.set_defaults(func=_models)

    p = sub.add_parser("train", help="fine-tune from a YAML config")
    p.add_argument("--config", required=True, help="a TrainConfig as YAML")
    p.add_argument("--data", help="chat JSONL (overrides the config's train_file)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--retrain", action="store_true", help="train even if an identical finished run exists")
    p.set_defaults(func=_train)

    p = sub.add_parser("run", help="run a course experiment headless and cache its run")
    p.add_argument("experiment", nargs="?", help="experiment id, e.g. e3-rank-sweep (omit to list)")
    p.add_argument("--profile", choices=("smoke", "full"), help="overrides LABKIT_PROFILE")
    p.set_defaults(func=_run)

    p = sub.add_parser("progress", help="quiz scores per part; CSV export for instructors")
    p.add_argument("--learner", help="learner name (default: $LABKIT_LEARNER or your user name)")
    p.add_argument("--file", help="progress file (default: $LABKIT_PROGRESS)")
    p.add_argument("--csv", help="write scores as CSV to this path ('-' for stdout)")
    p.set_defaults(func=_progress)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, LookupError, FileNotFoundError) as exc:
        # Config and data errors already carry the field or file:line; a traceback adds noise.
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
