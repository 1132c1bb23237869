"""`manage.py mine_relations`: mine co-purchases into the review queue, with progress."""

from django.conf import settings
from django.core.management.base import BaseCommand
from tqdm import tqdm

from recommendations.mining import relations_mine


class Command(BaseCommand):
    help = (
        "Compute co-purchase pairs (support, confidence both ways, lift) over the rolling window "
        "of orders and write them as pending relations for review in admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("--window-days", type=int, default=settings.OFFERLAB_MINING_WINDOW_DAYS)
        parser.add_argument("--max-basket", type=int, default=settings.OFFERLAB_MINING_MAX_BASKET)
        parser.add_argument(
            "--min-support-count", type=int, default=settings.OFFERLAB_MINING_MIN_SUPPORT_COUNT
        )

    def handle(self, *args, window_days, max_basket, min_support_count, **options):
        with tqdm(total=100, desc="Mining co-purchases", unit="%") as bar:

            def progress(percent: int, message: str) -> None:
                bar.set_postfix_str(message)
                bar.update(max(percent - bar.n, 0))

            result = relations_mine(
                window_days=window_days,
                max_basket=max_basket,
                min_support_count=min_support_count,
                progress=progress,
            )
        self.stdout.write(
            f"{result.baskets} order(s) from {result.window_start:%Y-%m-%d} to "
            f"{result.window_end:%Y-%m-%d}; {result.pairs} pair(s) with at least "
            f"{min_support_count} orders: {result.created} new relation(s) pending review, "
            f"{result.updated} refreshed, {result.removed} stale candidate(s) removed."
        )
