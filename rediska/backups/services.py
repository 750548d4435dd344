"""Backups, restore tests and restores: the rules, called by the commands, tasks and pages.

A backup is written into `<name>.partial/` and published under `<name>/` only when
its manifest (written last, fsync'd) is in place; a failed run removes its partial
folder and leaves every earlier backup alone.  Old backups are pruned only after a
new one succeeded.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from rediska import audit
from rediska.jobs import enqueue
from rediska.models import AuditLog, Job

from . import dump, manifest, snapshot
from .errors import BackupError, RestoreRefused
from .files import Budget, sha256_file, write_sidecar
from .targets import BackupTarget, StoredBackup, get_target

log = logging.getLogger(__name__)

BACKUP_TASK = "maintenance.mysql_dump_local"
SNAPSHOT_TASK = "maintenance.attachments_snapshot_local"
RESTORE_TEST_TASK = "maintenance.restore_test_local"
MAINTENANCE_TASKS = (BACKUP_TASK, SNAPSHOT_TASK, RESTORE_TEST_TASK)
ACKNOWLEDGE_ACTION = "maintenance.acknowledge"
FULL, ATTACHMENTS_ONLY = "full", "attachments"
# A running job touched this recently means a worker is busy with it.
BUSY_WINDOW = timedelta(minutes=10)
# Backups and restore tests queue behind a running one (a click during the nightly
# run is not a failure); a restore never waits.
LOCK_WAIT_SECONDS = 30 * 60
DUMP_FILES = {dump.SQLITE_FILE, dump.MYSQL_FILE}


def credentials_key_id() -> str:
    """A fingerprint of the key that encrypts provider tokens (the key itself is never backed up)."""
    return hashlib.sha256(b"rediska-key-id:" + settings.CREDENTIALS_KEY).hexdigest()[:16]


def _progress(job, **fields) -> None:
    if job is not None:
        job.set_progress(**fields)


def _error_message(exc: BaseException) -> str:
    return getattr(exc, "user_message", None) or audit.error_text(exc)


# --- Backup ------------------------------------------------------------------
def _previous_snapshot(target: BackupTarget) -> tuple[Path, dict] | None:
    for backup in reversed(target.list()):
        try:
            data = manifest.read(backup.path)
        except BackupError:
            continue
        if "attachments" in data:
            return backup.path / snapshot.FOLDER, data["attachments"]["files"]
    return None


def _dump_database(folder: Path, budget: Budget) -> dict:
    if connection.vendor == "sqlite":
        result = dump.dump_sqlite(folder, budget)
    elif connection.vendor == "mysql":
        result = dump.dump_mysql(folder, budget)
    else:
        raise BackupError(f"Backups of a {connection.vendor} database are not supported.")
    write_sidecar(folder / result.file, result.sha256, budget)
    last, applied = manifest.migration_state()
    return {"vendor": result.vendor, "file": result.file, "sha256": result.sha256, "bytes": result.bytes,
            "tables": result.tables, "migrations": last, "applied": applied}


def _refuse_unexpectedly_empty(data: dict, previous: tuple[Path, dict] | None) -> None:
    """An empty ATTACHMENTS_PATH that should hold files is usually an unmounted disk;
    backing it up night after night would prune every good backup."""
    root = settings.ATTACHMENTS_PATH
    if "database" in data:
        listed = data["database"]["tables"].get("attachments", 0)
        if listed:
            raise BackupError(f"ATTACHMENTS_PATH {root} is empty but the database lists {listed} attachments: "
                              "is the attachments disk mounted? Nothing was backed up or pruned.")
    elif previous and previous[1]:
        raise BackupError(f"ATTACHMENTS_PATH {root} is empty but the previous backup had {len(previous[1])} files: "
                          "is the attachments disk mounted? Nothing was backed up or pruned.")


def _write_backup(target: BackupTarget, *, database: bool, job, safety: bool = False) -> tuple[str, Path, dict]:
    started = timezone.now()
    budget = Budget()
    name, staging = target.new_staging()
    try:
        data = {"name": name, "kind": FULL if database else ATTACHMENTS_ONLY, "created_at": started.isoformat(),
                "app_version": manifest.app_version(), "job_id": getattr(job, "pk", None),
                "credentials_key_id": credentials_key_id()}
        if database:
            _progress(job, backup=name, stage="database")
            data["database"] = _dump_database(staging, budget)
        # Files after the dump: a row in the dump was committed after its file was written,
        # so every file the dump refers to is already there.
        _progress(job, backup=name, stage="attachments")
        previous = _previous_snapshot(target)
        snap = snapshot.take_snapshot(settings.ATTACHMENTS_PATH, staging / snapshot.FOLDER, previous, budget)
        if not snap.files and not safety:  # before a restore, an empty folder is why we restore
            _refuse_unexpectedly_empty(data, previous)
        data["attachments"] = {"folder": snapshot.FOLDER, "count": len(snap.files), "bytes": snap.bytes,
                               "copied": snap.copied, "linked": snap.linked, "copied_bytes": snap.copied_bytes,
                               "files": snap.files}
        data["finished_at"] = timezone.now().isoformat()
        manifest.write(staging, data, budget)
        return name, target.publish(name, staging), data
    except BaseException:
        target.discard(staging)
        raise


def _summary(name: str, data: dict) -> dict:
    db = data.get("database") or {}
    files = data["attachments"]
    return {"backup": name, "kind": data["kind"], "tables": len(db.get("tables", {})),
            "rows": sum(db.get("tables", {}).values()), "dump_bytes": db.get("bytes", 0),
            "files": files["count"], "file_bytes": files["bytes"], "files_copied": files["copied"],
            "files_linked": files["linked"]}


def _check_folders() -> None:
    backups, attachments = Path(settings.BACKUPS_PATH).resolve(), Path(settings.ATTACHMENTS_PATH).resolve()
    if backups == attachments or attachments in backups.parents:
        # Each snapshot would hold every earlier backup, growing without end.
        raise BackupError(f"BACKUPS_PATH {settings.BACKUPS_PATH} is inside ATTACHMENTS_PATH "
                          f"{settings.ATTACHMENTS_PATH}: put backups on their own folder (ideally another disk).")


def create_backup(*, database: bool = True, job=None, keep: int | None = None) -> dict:
    """Write a backup (database dump + attachments snapshot, or attachments only) and prune old ones."""
    kind = FULL if database else ATTACHMENTS_ONLY
    try:
        _check_folders()
        target = get_target()
        target.check_writable()
        with target.lock(exclusive=True, wait=LOCK_WAIT_SECONDS):
            stale = target.clean_partials()
            name, _, data = _write_backup(target, database=database, job=job)
            pruned = prune_backups(target, kind, keep or settings.BACKUP_KEEP)
    except Exception as exc:
        audit.record("maintenance.backup", actor="system", request={"kind": kind}, error=_error_message(exc))
        raise
    result = {**_summary(name, data), "pruned": pruned, "stale_partials_removed": stale}
    audit.record("maintenance.backup", actor="system", request={"kind": kind}, response=result)
    log.info("backup %s written (%s rows, %s files), pruned %s", name, result["rows"], result["files"], pruned)
    return result


def prune_backups(target: BackupTarget, kind: str, keep: int) -> list[str]:
    """Remove all but the newest `keep` backups of this kind (damaged ones are left for a person)."""
    of_kind = []
    for backup in target.list():
        try:
            if manifest.read(backup.path).get("kind") == kind:
                of_kind.append(backup)
        except BackupError:
            continue
    doomed = of_kind[:-keep] if keep > 0 else []
    for backup in doomed:
        target.remove(backup.name)
    return [backup.name for backup in doomed]


# --- Restore test ------------------------------------------------------------
@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    # False: the backup is as good as the data it was taken from; a restore may go ahead.
    blocks_restore: bool = True


@dataclass
class Report:
    name: str | None
    checks: list[Check] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)

    def passed(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, True, detail))

    def failed(self, name: str, detail: str, *, blocks_restore: bool = True) -> None:
        self.checks.append(Check(name, False, detail, blocks_restore))

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def restorable(self) -> bool:
        return bool(self.checks) and all(check.ok or not check.blocks_restore for check in self.checks)

    @property
    def warnings(self) -> list[str]:
        return [c.detail for c in self.checks if not c.ok and not c.blocks_restore]

    def as_dict(self) -> dict:
        return {"backup": self.name, "ok": self.ok,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks]}


def newest_backup(target: BackupTarget, *, kind: str | None = FULL) -> StoredBackup:
    """The newest complete backup (of `kind`, when its manifest says so)."""
    backups = target.list()
    for backup in reversed(backups):
        try:
            if kind is None or manifest.read(backup.path).get("kind") == kind:
                return backup
        except BackupError:
            return backup  # the newest is damaged: say so rather than test an older one
    raise BackupError(f"There are no backups in {target.description}.")


def _verify_dump(backup: StoredBackup, db: dict, report: Report) -> Path | None:
    file = db.get("file")
    if file not in DUMP_FILES:
        report.failed("dump", f"the manifest names an unknown dump file {file!r}")
        return None
    path = backup.path / file
    sidecar = path.with_name(file + ".sha256")
    if not path.is_file():
        report.failed("dump", f"{file} is missing")
        return None
    digest, size = sha256_file(path)
    try:
        recorded = sidecar.read_text().split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        report.failed("checksum", f"{sidecar.name} is missing or unreadable")
        return None
    if digest != db.get("sha256") or digest != recorded:
        report.failed("checksum", f"{file} does not match its sha256 (damaged or changed)")
        return None
    report.passed("checksum", f"{file} ({size} bytes) matches its sha256")
    return path


def _compare_counts(restored: dict[str, int], expected: dict[str, int], report: Report) -> None:
    problems = []
    for table in sorted(set(expected) | set(restored)):
        if table not in restored:
            problems.append(f"{table} is missing")
        elif table not in expected:
            problems.append(f"{table} is not in the manifest")
        elif restored[table] != expected[table]:
            problems.append(f"{table} has {restored[table]} rows, expected {expected[table]}")
    if problems:
        report.failed("row counts", "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else ""))
    else:
        report.passed("row counts", f"{sum(restored.values())} rows in {len(restored)} tables match the manifest")


def _compare_attachment_rows(rows: list[tuple[str, str]], files: dict[str, dict], report: Report) -> None:
    """Every attachments row must have its file, with its hash, in the snapshot."""
    missing = sorted(key for key, _ in rows if key not in files)
    differ = sorted(key for key, sha in rows if key in files and files[key]["sha256"] != sha)
    def some(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")

    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(rows)} attachment rows have no file in the backup "
                        f"({some(missing)}): missing from ATTACHMENTS_PATH when the backup was taken")
    if differ:
        problems.append(f"{len(differ)} of {len(rows)} attachment rows do not match their file's sha256 "
                        f"({some(differ)})")
    if problems:
        # The live data had already lost these: restoring does not make it worse.
        report.failed("attachment rows", "; ".join(problems), blocks_restore=False)
    else:
        report.passed("attachment rows", f"each of the {len(rows)} attachment rows has its file, same sha256")


def _check_scratch(scratch, attachment_rows, db: dict, files: dict[str, dict], report: Report, then) -> None:
    """The restored scratch copy against the manifest; then `then(scratch)` if it may be restored."""
    _compare_counts(report.tables, db.get("tables", {}), report)
    if "attachments" in report.tables:
        _compare_attachment_rows(attachment_rows(scratch), files, report)
    if then is not None and report.restorable:
        then(scratch)


def _restore_database(backup: StoredBackup, db: dict, files: dict[str, dict], report: Report, *,
                      then=None) -> None:
    """Restore the dump into a scratch database, compare counts and attachment rows, then optionally
    `then(scratch)`."""
    path = _verify_dump(backup, db, report)
    if path is None:
        return
    try:
        if db.get("vendor") == "sqlite":
            with tempfile.TemporaryDirectory(dir=settings.DATA_DIR, prefix="restoretest-") as work, \
                    dump.sqlite_copy(path, Path(work)) as scratch:
                report.tables = dump.sqlite_counts(scratch)
                report.passed("restore", f"restored into a scratch SQLite file ({len(report.tables)} tables)")
                _check_scratch(scratch, dump.sqlite_attachment_rows, db, files, report, then)
        elif db.get("vendor") == "mysql":
            if connection.vendor != "mysql":
                report.failed("restore", "this is a MySQL/MariaDB dump; restoring it needs MYSQL_URL set")
                return
            with dump.mysql_scratch("restoretest") as scratch:
                dump.load_mysql(path, scratch)
                report.tables = dump.mysql_counts(scratch)
                report.passed("restore", f"restored into scratch database {scratch} ({len(report.tables)} tables)")
                _check_scratch(scratch, dump.mysql_attachment_rows, db, files, report, then)
        else:
            report.failed("restore", f"unknown database kind {db.get('vendor')!r}")
    except BackupError as exc:
        report.failed("restore", exc.user_message)


def _check_backup(backup: StoredBackup, report: Report, *, restore_then=None) -> dict | None:
    try:
        data = manifest.read(backup.path)
    except BackupError as exc:
        report.failed("manifest", exc.user_message)
        return None
    report.passed("manifest", f"{data.get('kind', FULL)} backup made {data.get('created_at')} "
                              f"by Rediska {data.get('app_version')}")
    db = data.get("database")
    if db:
        unknown = manifest.unknown_migrations(db.get("applied", []))
        if unknown:
            report.failed("schema", f"made by a newer schema (unknown migrations: {', '.join(unknown[:5])})")
        else:
            report.passed("schema", "every migration is known to this version")
    files = data.get("attachments")
    if files is not None:
        try:
            problems = snapshot.check_snapshot(backup.path / snapshot.FOLDER, files.get("files", {}))
        except BackupError as exc:
            problems = [exc.user_message]
        if problems:
            more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
            report.failed("attachments", "; ".join(problems[:3]) + more)
        else:
            report.passed("attachments", f"{files['count']} files ({files['bytes']} bytes) match their sha256")
    if db and report.ok:
        _restore_database(backup, db, (files or {}).get("files", {}), report, then=restore_then)
    elif db:
        report.failed("restore", "not attempted: the checks above failed")
    return data


def run_restore_test(name: str | None = None, *, job=None) -> Report:
    """Restore a backup (the newest full one by default) into scratch space and check everything."""
    report = Report(name)
    try:
        target = get_target()
        with target.lock(exclusive=False, wait=LOCK_WAIT_SECONDS):
            backup = target.get(name) if name else newest_backup(target)
            report.name = backup.name
            _progress(job, backup=backup.name, stage="checking")
            _check_backup(backup, report)
    except BackupError as exc:
        report.failed("backup", exc.user_message)
    _progress(job, backup=report.name, checks=report.as_dict()["checks"])
    audit.record("maintenance.restore_test", actor="system", request={"backup": report.name},
                 response=report.as_dict(), result="ok" if report.ok else "error")
    return report


# --- Restore -----------------------------------------------------------------
def busy_jobs() -> list[Job]:
    since = timezone.now() - BUSY_WINDOW
    return list(Job.objects.filter(status=Job.Status.RUNNING, updated_at__gte=since).only("pk", "job_type"))


def _settle_restored_jobs(data: dict, name: str) -> int:
    """Jobs that were queued/running when the backup was taken have no worker behind them now."""
    now = timezone.now()
    own = data.get("job_id")
    if own:
        Job.objects.filter(pk=own, status__in=Job.ACTIVE).update(
            status=Job.Status.DONE, result_json=_summary(name, data), finished_at=now, updated_at=now)
    return Job.objects.filter(status__in=Job.ACTIVE).update(
        status=Job.Status.FAILED, finished_at=now, updated_at=now, next_run_at=None,
        last_error=f"Interrupted: the database was restored from backup {name}, taken while this job was pending.")


def restore_backup(name: str, *, yes: bool, force: bool = False) -> dict:
    """Replace the database and attachments with backup `name` (after a safety backup)."""
    if not yes:
        raise RestoreRefused("Refusing to restore without --yes: it replaces the database and attachments.")
    _check_folders()  # else the restore would delete the backups as files the snapshot lacks
    target = get_target()
    backup = target.get(name)
    data = manifest.read(backup.path)
    db = data.get("database")
    unknown = manifest.unknown_migrations((db or {}).get("applied", []))
    if unknown:
        raise RestoreRefused(f"Backup {name} comes from a newer schema (unknown migrations: {', '.join(unknown[:3])}); "
                             "upgrade Rediska before restoring it.")
    if db and db.get("vendor") != connection.vendor:
        raise RestoreRefused(f"Backup {name} holds a {db.get('vendor')} database but this Rediska uses "
                             f"{connection.vendor}.")
    if not force and (busy := busy_jobs()):
        kinds = ", ".join(sorted({job.job_type for job in busy}))
        raise RestoreRefused(f"{len(busy)} job(s) are running ({kinds}); stop the worker or wait "
                             "(or pass --force).")
    target.check_writable()
    with target.lock(exclusive=True):
        # The safety backup is not pruned: it must not push out the backup being restored.
        safety, _, _ = _write_backup(target, database=bool(db), job=None, safety=True)
        attachments = Path(settings.ATTACHMENTS_PATH)
        plan = snapshot.plan_restore(data["attachments"]["files"], attachments, remove_extra=bool(db))
        snapshot.check_room(plan, attachments)
        report = Report(name)
        swap = dump.load_sqlite_into_live if connection.vendor == "sqlite" else dump.swap_mysql_into_live
        _check_backup(backup, report, restore_then=swap)
        if not report.restorable:
            failed = next(check for check in report.checks if not check.ok and check.blocks_restore)
            raise RestoreRefused(f"Backup {name} failed its checks ({failed.name}: {failed.detail}); "
                                 f"nothing was restored (safety backup {safety} kept).")
        files = snapshot.apply_restore(plan, backup.path / snapshot.FOLDER, data["attachments"]["files"], attachments)
    connection.close()  # the tables under this connection were replaced
    with transaction.atomic():
        interrupted = _settle_restored_jobs(data, name) if db else 0
        result = {"backup": name, "safety_backup": safety, "tables": len(report.tables),
                  "rows": sum(report.tables.values()), "files_written": files.written,
                  "files_unchanged": files.unchanged, "files_removed": files.removed,
                  "jobs_interrupted": interrupted,
                  "migrations_pending": len(manifest.pending_migrations(db["applied"])) if db else 0,
                  # False: tokens in this backup were encrypted with another key; identities need reconnecting.
                  "credentials_key_matches": data.get("credentials_key_id") in (None, credentials_key_id()),
                  "warnings": report.warnings}
        audit.record("maintenance.restore", request={"backup": name, "force": force}, response=result)
    return result


# --- Pages -------------------------------------------------------------------
@dataclass
class BackupInfo:
    name: str
    kind: str = FULL
    created_at: datetime | None = None
    dump_bytes: int = 0
    files: int = 0
    file_bytes: int = 0
    copied_bytes: int = 0
    rows: int = 0
    problem: str | None = None
    verified: bool | None = None
    verified_at: datetime | None = None
    verify_job_id: int | None = None


def _verification_by_backup() -> dict[str, Job]:
    jobs = (Job.objects.filter(job_type=RESTORE_TEST_TASK, status__in=[Job.Status.DONE, Job.Status.FAILED])
            .only("pk", "status", "progress_json", "finished_at").order_by("-pk")[:200])
    latest: dict[str, Job] = {}
    for job in jobs:
        name = (job.progress_json or {}).get("backup")
        if name and name not in latest:
            latest[name] = job
    return latest


def list_backups() -> list[BackupInfo]:
    """Every backup, newest first, with what its manifest says and its last restore test."""
    verified = _verification_by_backup()
    infos = []
    for backup in reversed(get_target().list()):
        info = BackupInfo(backup.name)
        try:
            data = manifest.read(backup.path)
            db = data.get("database") or {}
            info.kind = data.get("kind", FULL)
            info.created_at = datetime.fromisoformat(data["created_at"])
            info.dump_bytes = db.get("bytes", 0)
            info.rows = sum(db.get("tables", {}).values())
            info.files = data["attachments"]["count"]
            info.file_bytes = data["attachments"]["bytes"]
            info.copied_bytes = data["attachments"]["copied_bytes"]
        except (BackupError, KeyError, TypeError, ValueError) as exc:
            info.problem = getattr(exc, "user_message", "the manifest is incomplete")
        job = verified.get(backup.name)
        if job is not None:
            info.verified = job.status == Job.Status.DONE
            info.verified_at = job.finished_at
            info.verify_job_id = job.pk
        infos.append(info)
    return infos


def request_task(task: str, **kwargs) -> tuple[Job, bool]:
    """Enqueue a maintenance task unless one is already pending; (job, newly queued)."""
    pending = Job.objects.filter(job_type=task, status__in=Job.ACTIVE).order_by("-pk").first()
    if pending is not None:
        return pending, False
    return enqueue(task, **kwargs), True


def unacknowledged_failures(limit: int = 20) -> list[Job]:
    """Failed backups and restore tests newer than the last acknowledgement, newest first."""
    acknowledged = AuditLog.objects.filter(action_type=ACKNOWLEDGE_ACTION).aggregate(m=Max("entity_id"))["m"] or 0
    return list(Job.objects.filter(job_type__in=MAINTENANCE_TASKS, status=Job.Status.FAILED, pk__gt=acknowledged)
                .only("pk", "job_type", "last_error", "finished_at").order_by("-pk")[:limit])


def acknowledge_failures(job: Job) -> None:
    """Hide the failure alert for this job and every earlier one (the audit log keeps who and when)."""
    audit.record(ACKNOWLEDGE_ACTION, entity=job, request={"job_type": job.job_type})
