"""`manage.py import_catalog PATH.csv`: upsert products from a CSV file, row by row errors."""

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommendations.services import MAX_PRODUCTS_PER_BATCH, products_upsert

REQUIRED = ("sku", "name", "category", "price")
OPTIONAL = ("active", "in_stock")


class Command(BaseCommand):
    help = (
        "Create or update products from a CSV with a header row: sku,name,category,price"
        "[,active,in_stock]. Invalid rows are reported with their line number; the others are "
        "imported. Exits with status 2 when any row was rejected."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--delimiter", default=",")

    def handle(self, *args, path: Path, delimiter: str, **options):
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        try:
            self._import(path, delimiter)
        except UnicodeDecodeError as exc:
            raise CommandError(
                f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV."
            ) from exc

    def _import(self, path: Path, delimiter: str) -> None:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            total = max(sum(1 for _ in handle) - 1, 0)
            handle.seek(0)
            reader = csv.DictReader(handle, delimiter=delimiter)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise CommandError(
                    f"{path}: missing column(s) {', '.join(missing)}; the header must name "
                    f"{', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})."
                )
            reader.fieldnames = header
            created = updated = 0
            rejected: list[tuple[int, dict]] = []
            batch: list[tuple[int, dict]] = []
            with tqdm(total=total, desc="Importing products", unit="row") as bar:
                for row in reader:
                    if None in row:  # more cells than the header names
                        cells = len(header) + len(row[None])
                        problem = f"{cells} cells but the header has {len(header)} columns"
                        rejected.append((reader.line_num, {"row": [problem]}))
                        bar.update(1)
                        continue
                    batch.append((reader.line_num, self._row(row)))
                    if len(batch) == MAX_PRODUCTS_PER_BATCH:
                        c, u, r = self._flush(batch)
                        created, updated = created + c, updated + u
                        rejected += r
                        bar.update(len(batch))
                        batch = []
                if batch:
                    c, u, r = self._flush(batch)
                    created, updated = created + c, updated + u
                    rejected += r
                    bar.update(len(batch))
        for line, errors in sorted(rejected, key=lambda r: r[0]):
            detail = "; ".join(
                f"{field}: {' '.join(map(str, msgs))}" for field, msgs in errors.items()
            )
            self.stderr.write(f"line {line}: {detail}")
        self.stdout.write(
            f"Imported {created + updated} product(s): {created} created, {updated} updated, "
            f"{len(rejected)} row(s) rejected."
        )
        if rejected:
            raise CommandError(f"{len(rejected)} row(s) rejected (see above).", returncode=2)

    @staticmethod
    def _row(row: dict) -> dict:
        return {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}

    @staticmethod
    def _flush(batch: list[tuple[int, dict]]) -> tuple[int, int, list[tuple[int, dict]]]:
        result = products_upsert(rows=[row for _, row in batch])
        lines = [line for line, _ in batch]
        return (
            result.created,
            result.updated,
            [(lines[r["index"]], r["errors"]) for r in result.rejected],
        )
