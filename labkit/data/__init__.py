"""Course data: chat JSONL (``chat``), the generated Northwind formulary (``formulary``), general
data against forgetting (``general``), noise for the LIMA lesson (``noise``), a linter for the
four qualities (``lint``) and loaders for your own data (``loaders``)."""

from labkit.data.chat import DataError, read_chat_jsonl, validate_messages, validate_rows, write_chat_jsonl
from labkit.data.lint import LintReport, lint
from labkit.data.loaders import read_chat, read_docs_folder, read_qa_csv
from labkit.data.noise import NoiseResult, inject

__all__ = [
    "DataError", "LintReport", "NoiseResult", "inject", "lint", "read_chat", "read_chat_jsonl",
    "read_docs_folder", "read_qa_csv", "validate_messages", "validate_rows", "write_chat_jsonl",
]
