"""Course data: chat JSONL (``chat``), generated domains, loaders for your own data, a linter."""

from labkit.data.chat import DataError, read_chat_jsonl, validate_messages, validate_rows, write_chat_jsonl

__all__ = ["DataError", "read_chat_jsonl", "validate_messages", "validate_rows", "write_chat_jsonl"]
