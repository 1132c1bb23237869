"""Indexes nothing reads, dropped to make each served offer's insert cheaper:

- the offer's own experiment_id index (offer_experiment_idx, (experiment, variant), serves it;
  only the index is dropped, the foreign key is not re-validated);
- the LIKE (varchar_pattern_ops) twins of the offer's api_key index and of the cap ledger's
  customer_id unique index: nothing matches either with LIKE. The api key keeps a plain index;
  the ledger's uniqueness, which its upsert's ON CONFLICT relies on, becomes a named constraint.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0005_assignment_experiment_served_by_unique_index"),
        ("recommendations", "0002_caps_and_samples"),
        ("rest_framework_api_key", "0005_auto_20220110_1102"),
    ]

    operations = [
        migrations.AlterField(
            model_name="customercap",
            name="customer_id",
            field=models.CharField(max_length=255),
        ),
        migrations.AddConstraint(
            model_name="customercap",
            constraint=models.UniqueConstraint(
                fields=("customer_id",), name="customercap_unique_customer"
            ),
        ),
        migrations.AlterField(
            model_name="offer",
            name="api_key",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="rest_framework_api_key.apikey",
            ),
        ),
        migrations.AddIndex(
            model_name="offer",
            index=models.Index(fields=["api_key"], name="offer_api_key_idx"),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="offer",
                    name="experiment",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="offers",
                        to="experiments.experiment",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "recommendations_offer_experiment_id_3355da41"',
                    reverse_sql='CREATE INDEX "recommendations_offer_experiment_id_3355da41" '
                    'ON "recommendations_offer" ("experiment_id")',
                ),
            ],
        ),
    ]
