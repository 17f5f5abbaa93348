"""The `labkit` command: doctor | models | train | run | progress.

Each subcommand imports its module only when called, so `labkit --help` stays instant.
"""

from __future__ import annotations

import argparse
import sys

from labkit.errors import LabkitError


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
    from labkit.config import TrainConfig

    config = TrainConfig.from_yaml(args.config)  # a config error arrives before torch and TRL load
    if args.dry_run:
        from labkit.sft.data import cli_check_data

        return cli_check_data(args, config)
    from labkit.sft.train import cli_train

    return cli_train(args, config)


def _run(args: argparse.Namespace) -> int:
    from labkit.lessons import cli_run

    return cli_run(args)


def _progress(args: argparse.Namespace) -> int:
    from labkit.errors import PathError
    from labkit.quiz.report import cli_progress

    try:
        return cli_progress(args)
    except OSError as exc:
        if isinstance(exc, LabkitError):
            raise
        # the progress store already names its own path; what is left is the CSV export
        if args.csv and args.csv != "-":
            raise PathError.of(exc, args.csv, "write the CSV export") from None
        raise PathError.of(exc, exc.filename or args.file or "progress file", "read or write it") from None


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
    p.add_argument("--data", help="training data (overrides the config's train_file): .jsonl/.json/.csv/.tsv/"
                   ".parquet or a save_to_disk folder; chat messages, prompt/completion, Alpaca, ShareGPT or "
                   "question/answer rows")
    p.add_argument("--dry-run", action="store_true", help="read and check the config and data, then stop (no model)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--retrain", action="store_true", help="train even if an identical finished run exists")
    p.set_defaults(func=_train)

    p = sub.add_parser("run", help="run a lesson's experiments headless and cache their runs")
    p.add_argument("lesson", nargs="?", help="a lesson id such as lesson2, or 'all' (omit to list them)")
    p.add_argument("--profile", choices=("smoke", "full"), help="overrides LABKIT_PROFILE")
    p.set_defaults(func=_run)

    p = sub.add_parser("progress", help="quiz scores per part; CSV export for instructors")
    p.add_argument("--learner", help="learner name (default: $LABKIT_LEARNER or your user name)")
    p.add_argument("--file", help="progress file (default: $LABKIT_PROGRESS)")
    p.add_argument("--csv", help="write scores as CSV to this path ('-' for stdout)")
    p.set_defaults(func=_progress)

    from labkit.evaluate.forgetting import add_parser as add_forgetting  # light: torch loads only when it runs

    add_forgetting(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except LabkitError as exc:
        # labkit's own errors already carry the field or file:line; a traceback adds noise. Anything
        # else (raised inside transformers, TRL, torch) keeps its traceback: that is where the clue is.
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
