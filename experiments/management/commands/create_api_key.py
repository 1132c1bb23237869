from django.core.management.base import BaseCommand, CommandError
from rest_framework_api_key.models import APIKey


class Command(BaseCommand):
    help = "Create a storefront API key. The key is shown once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who uses the key, e.g. 'web-shop' or 'email-sender'.")

    def handle(self, *args, name: str, **options):
        name = name.strip()
        limit = APIKey._meta.get_field("name").max_length
        if not name or len(name) > limit:
            raise CommandError(f"The key's name must be 1–{limit} characters, e.g. 'web-shop'.")
        api_key, key = APIKey.objects.create_key(name=name)
        self.stderr.write(
            f"Created API key '{api_key.name}' (prefix {api_key.prefix}). "
            "Store it now: it cannot be shown again."
        )
        self.stdout.write(key)
