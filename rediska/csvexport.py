"""Streamed CSV downloads: rows are written as they are read, never held in memory.

Cells that a spreadsheet would run as a formula (starting with =, +, -, @, a tab
or a carriage return; OWASP "CSV injection") are prefixed with a single quote,
so a username or post title like `=HYPERLINK(...)` stays text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.http import StreamingHttpResponse
from django.utils import timezone

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK_ROWS = 500


def safe_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if timezone.is_aware(value) \
            else value.isoformat(sep=" ")
    if isinstance(value, (int, float)):
        return str(value)  # a number is data, even a negative one
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_chunks(header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """The CSV text, CHUNK_ROWS rows per chunk (a BOM first so spreadsheets read UTF-8)."""
    writer = csv.writer(_Echo())
    buffer = ["\ufeff" + writer.writerow(header)]
    for row in rows:
        buffer.append(writer.writerow([safe_cell(v) for v in row]))
        if len(buffer) >= CHUNK_ROWS:
            yield "".join(buffer)
            buffer = []
    if buffer:
        yield "".join(buffer)


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_chunks(header, rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{filename}-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


def batches(queryset, size: int = 1000) -> Iterator[list]:
    """Lists of rows of `queryset` (model instances, or `.values()` dicts with "pk"), read in keyset pages by
    primary key: constant memory on every backend (MySQL's client would otherwise buffer the whole result).
    The caller looks up each page's related rows in one query per page."""
    last = None
    while True:
        page = queryset.order_by("pk")
        if last is not None:
            page = page.filter(pk__gt=last)
        rows = list(page[:size])
        if not rows:
            return
        yield rows
        last = rows[-1]["pk"] if isinstance(rows[-1], dict) else rows[-1].pk
