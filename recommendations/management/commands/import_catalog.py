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
        for line, errors in rejected:
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
        cleaned = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
        if None in row:  # more cells than header columns
            cleaned["_extra"] = row[None]
        return cleaned

    @staticmethod
    def _flush(batch: list[tuple[int, dict]]) -> tuple[int, int, list[tuple[int, dict]]]:
        result = products_upsert(rows=[row for _, row in batch])
        lines = [line for line, _ in batch]
        return (
            result.created,
            result.updated,
            [(lines[r["index"]], r["errors"]) for r in result.rejected],
        )
