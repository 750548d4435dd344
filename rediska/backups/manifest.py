"""The manifest: what a backup holds, written last so a backup without one is incomplete."""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from .errors import BackupError
from .files import Budget

FILE = "manifest.json"
FORMAT = 1


def app_version() -> str:
    try:
        return metadata.version("rediska")
    except metadata.PackageNotFoundError:
        return "unknown"


def migration_state() -> tuple[dict[str, str], list[str]]:
    """(app -> last applied migration, every applied migration as "app.name")."""
    applied = sorted(MigrationRecorder(connection).applied_migrations())
    last: dict[str, str] = {}
    for app, name in applied:
        last[app] = max(last.get(app, name), name)
    return last, [f"{app}.{name}" for app, name in applied]


def _known_migrations() -> set[str]:
    return {f"{app}.{name}" for app, name in MigrationLoader(None, ignore_no_migrations=True).disk_migrations}


def unknown_migrations(applied: list[str]) -> list[str]:
    """Migrations a backup had applied that this code does not have (a newer schema)."""
    return sorted(set(applied) - _known_migrations())


def pending_migrations(applied: list[str]) -> list[str]:
    """Migrations this code has that a backup had not applied (an older schema)."""
    return sorted(_known_migrations() - set(applied))


def write(folder: Path, data: dict, budget: Budget) -> None:
    payload = json.dumps({"format": FORMAT, **data}, indent=1, sort_keys=True).encode()
    budget.spend(len(payload))
    tmp = folder / (FILE + ".tmp")
    with open(tmp, "xb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / FILE)


def read(folder: Path) -> dict:
    path = folder / FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BackupError(f"Backup {folder.name} has no manifest: it is incomplete.") from None
    except (ValueError, UnicodeDecodeError):
        raise BackupError(f"The manifest of backup {folder.name} is damaged.") from None
    if not isinstance(data, dict) or not isinstance(data.get("format"), int):
        raise BackupError(f"The manifest of backup {folder.name} is damaged.")
    if data["format"] > FORMAT:
        raise BackupError(f"Backup {folder.name} was made by a newer Rediska (manifest format {data['format']}).")
    return data
