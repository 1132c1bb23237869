"""`manage.py import_events PATH`: back-fill outcome events (e.g. order history) from a file.

JSON lines: one event object per line, exactly as POST /api/v1/events takes them.
CSV: a header row with the event columns (event_id, type, customer_id, occurred_at, offer_id,
order_id, amount, currency) and the item columns (sku, category, quantity, price); consecutive
rows with the same event_id are one event with one item per row (event columns are read from
its first row). Empty cells are absent values.

Events go through the same validation and idempotent insert as the API, in batches of
OFFERLAB_EVENT_MAX_BATCH, so an import can be re-run safely: what is already stored is reported
as duplicate.
"""

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from experiments.events import events_ingest

EVENT_COLUMNS = (
    "event_id",
    "type",
    "customer_id",
    "occurred_at",
    "offer_id",
    "order_id",
    "amount",
    "currency",
)
ITEM_COLUMNS = ("sku", "category", "quantity", "price")
SHOWN_REJECTIONS = 20


class _Unparseable:
    """A line that is not JSON: reported as rejected, never sent to the service."""

    def __init__(self, message: str):
        self.message = message


class _CountingLines:
    """Decoded lines of a binary stream, counting bytes read for the progress bar."""

    def __init__(self, stream, progress: tqdm):
        self.stream = stream
        self.progress = progress
        self.first = True

    def __iter__(self) -> Iterator[str]:
        for raw in self.stream:
            self.progress.update(len(raw))
            encoding = "utf-8-sig" if self.first else "utf-8"
            self.first = False
            yield raw.decode(encoding, errors="replace")


def _json_lines(lines: Iterable[str]) -> Iterator[tuple[int, object]]:
    """(line number, event or an error dict) for each non-blank line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield number, _Unparseable(f"Invalid JSON: {exc}")


def _csv_events(lines: Iterable[str]) -> Iterator[tuple[int, object]]:
    reader = csv.DictReader(lines)
    missing = {"event_id", "type", "customer_id", "occurred_at"} - set(reader.fieldnames or ())
    if missing:
        raise CommandError(f"CSV header lacks column(s): {', '.join(sorted(missing))}.")
    current, current_line = None, 0
    for row in reader:
        line = reader.line_num
        if current is not None and row.get("event_id") == current.get("event_id"):
            _add_item(current, row)
            continue
        if current is not None:
            yield current_line, current
        current = {c: row[c] for c in EVENT_COLUMNS if row.get(c) not in (None, "")}
        current_line = line
        _add_item(current, row)
    if current is not None:
        yield current_line, current


def _add_item(event: dict, row: dict) -> None:
    item = {c: row[c] for c in ITEM_COLUMNS if row.get(c) not in (None, "")}
    if item:
        event.setdefault("items", []).append(item)


class Command(BaseCommand):
    help = "Import outcome events from a JSON-lines or CSV file (PATH, or - for stdin)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="a .jsonl/.ndjson or .csv file, or - for stdin")
        parser.add_argument(
            "--format", choices=("jsonl", "csv"), help="default: from the file extension"
        )
        parser.add_argument(
            "--rejects",
            metavar="FILE",
            help="write every rejected event as a JSON line {line, errors, event}",
        )

    def handle(self, *args, path: str, format: str | None, rejects: str | None, **options):
        kind = format or self._format_for(path)
        if path == "-":
            stream, total = sys.stdin.buffer, None
        else:
            source = Path(path)
            if not source.is_file():
                raise CommandError(f"No such file: {path}")
            stream, total = source.open("rb"), source.stat().st_size
        reject_file = open(rejects, "w", encoding="utf-8") if rejects else None  # noqa: SIM115
        try:
            with tqdm(
                total=total, unit="B", unit_scale=True, desc="Importing events", file=self.stderr
            ) as progress:
                lines = _CountingLines(stream, progress)
                events = _json_lines(lines) if kind == "jsonl" else _csv_events(lines)
                totals = self._import(events, progress, reject_file)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
            if reject_file:
                reject_file.close()
        self._summary(path, totals, rejects)

    @staticmethod
    def _format_for(path: str) -> str:
        suffix = Path(path).suffix.lower()
        if suffix == ".csv":
            return "csv"
        if suffix in (".jsonl", ".ndjson", ".json"):
            return "jsonl"
        raise CommandError("Cannot tell the format from the file name; pass --format jsonl|csv.")

    def _import(self, events: Iterator[tuple[int, object]], progress: tqdm, reject_file) -> dict:
        totals = {"events": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "examples": []}
        batch: list[tuple[int, object]] = []
        for numbered in events:
            batch.append(numbered)
            if len(batch) >= settings.OFFERLAB_EVENT_MAX_BATCH:
                self._flush(batch, totals, reject_file)
                progress.set_postfix(self._postfix(totals))
                batch = []
        if batch:
            self._flush(batch, totals, reject_file)
            progress.set_postfix(self._postfix(totals))
        return totals

    @staticmethod
    def _postfix(totals: dict) -> dict:
        return {k: totals[k] for k in ("accepted", "duplicates", "rejected")}

    def _flush(self, batch: list[tuple[int, object]], totals: dict, reject_file) -> None:
        rejected = []
        parsed = []
        for line, event in batch:
            if isinstance(event, _Unparseable):
                rejected.append((line, {"non_field_errors": [event.message]}, None))
            else:
                parsed.append((line, event))
        if parsed:
            result = events_ingest(events=[e for _, e in parsed], api_key_id=None)
            totals["accepted"] += result.accepted
            totals["duplicates"] += result.duplicates
            for entry in result.rejected:
                line, event = parsed[entry["index"]]
                rejected.append((line, entry["errors"], event))
        totals["events"] += len(batch)
        totals["rejected"] += len(rejected)
        rejected.sort(key=lambda r: r[0])
        for line, errors, event in rejected:
            if len(totals["examples"]) < SHOWN_REJECTIONS:
                totals["examples"].append((line, errors))
            if reject_file:
                reject_file.write(
                    json.dumps({"line": line, "errors": errors, "event": event}, default=str) + "\n"
                )

    def _summary(self, path: str, totals: dict, rejects: str | None) -> None:
        self.stdout.write(
            f"{path}: {totals['events']:,} events — accepted {totals['accepted']:,}, "
            f"duplicates {totals['duplicates']:,}, rejected {totals['rejected']:,}"
        )
        for line, errors in totals["examples"]:
            detail = "; ".join(
                f"{field}: {_describe(messages)}" for field, messages in errors.items()
            )
            self.stdout.write(f"  line {line}: {detail}")
        hidden = totals["rejected"] - len(totals["examples"])
        if hidden > 0:
            where = f" (all in {rejects})" if rejects else " (use --rejects FILE for all)"
            self.stdout.write(f"  … and {hidden:,} more rejected{where}")


def _describe(messages) -> str:
    """Flatten DRF-style errors: ["msg"] or, for items, [{}, {"quantity": ["msg"]}]."""
    parts = []
    for position, message in enumerate(messages):
        if isinstance(message, dict):
            parts.extend(
                f"item {position + 1} {field} {' '.join(texts)}" for field, texts in message.items()
            )
        else:
            parts.append(str(message))
    return " ".join(parts)
