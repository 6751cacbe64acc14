"""What every `flow-policy` command shares: its user-facing error and the output-path check.

Its own module, not cli.py: `python -m flow_policy_node.cli` (torchrun) runs cli.py as
``__main__``, and a second copy of the error class there would not match the one raised.
"""

from __future__ import annotations

import os
from pathlib import Path


class CommandError(Exception):
    """Something the user can fix (a path, an argument); the message says what."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def check_writable(path: Path, what: str) -> None:
    """Refuse, before any work, an output ``path`` that cannot be created or written."""
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise CommandError(f"cannot write {what} to {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK):
        raise CommandError(f"cannot write {what} to {path}: permission denied on {existing}")
