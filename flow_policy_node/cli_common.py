"""What every `flow-policy` command shares: its user-facing error, the output-path check, and
options whose defaults are a configuration dataclass's.

Its own module, not cli.py: `python -m flow_policy_node.cli` (torchrun) runs cli.py as
``__main__``, and a second copy of the error class there would not match the one raised.
"""

from __future__ import annotations

import argparse
import importlib
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


class ConfigDefault:
    """A dataclass field's default, read only when a command's help is printed: the module
    that holds the dataclass may be slow to import (numpy, mujoco), and `--help` is not."""

    def __init__(self, config: str, field: str) -> None:
        self.config, self.field = config, field  # config: "package.module.ClassName"

    def __str__(self) -> str:
        module, name = self.config.rsplit(".", 1)
        value = getattr(getattr(importlib.import_module(module), name)(), self.field)
        return " ".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


def config_option(parser: argparse.ArgumentParser, flag: str, config: str, help: str, **kwargs) -> None:
    """An option for the field of ``config`` ("package.module.ClassName") that ``flag`` names.

    It has no default of its own (None: keep the dataclass's, see :func:`given`); its help
    shows the dataclass's default.
    """
    field = flag.lstrip("-").replace("-", "_")
    action = parser.add_argument(flag, help=help + " (default: %(config_default)s)", **kwargs)
    action.config_default = ConfigDefault(config, field)


def given(args: argparse.Namespace, *fields: str) -> dict:
    """The options among ``fields`` given on the command line (the others keep their defaults)."""
    return {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
