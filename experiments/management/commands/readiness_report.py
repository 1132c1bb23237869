"""`manage.py readiness_report KEY [--format text|json|html] [--output PATH]`."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from experiments.report import FORMATS, NeverAnalysed, render, report_for
from experiments.selectors import experiment_get


class Command(BaseCommand):
    help = (
        "Print (or write) the scale-readiness report of an experiment's latest analysis: "
        "verdict, the nine criteria with evidence, the next step; HTML adds the charts."
    )

    def add_arguments(self, parser):
        parser.add_argument("key", help="experiment key")
        parser.add_argument("--format", choices=FORMATS, default="text", dest="fmt")
        parser.add_argument(
            "--output", "-o", help="write to this file instead of printing (e.g. report.html)"
        )

    def handle(self, *args, key, fmt, output=None, **options):
        experiment = experiment_get(key)
        if experiment is None:
            raise CommandError(f"No experiment with key '{key}'.")
        try:
            report = report_for(experiment)
        except NeverAnalysed as exc:
            raise CommandError(str(exc)) from None
        body = render(report, fmt)
        if not output:
            self.stdout.write(body, ending="")
            return
        path = Path(output)
        try:
            path.write_text(body, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {path}: {exc.strerror or exc}") from None
        self.stdout.write(
            f"Wrote the {fmt} readiness report of '{key}' "
            f"({report.readiness['verdict']}) to {path.resolve()}"
        )
