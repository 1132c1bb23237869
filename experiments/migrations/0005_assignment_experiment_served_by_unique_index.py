"""Drop the assignment's own index on experiment_id: the (experiment, customer_id) unique
constraint starts with it and serves every lookup by experiment.

Only the index is dropped (the foreign key stays as it is), so the table is not re-validated."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0004_event_drop_type_time_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="assignment",
                    name="experiment",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="assignments",
                        to="experiments.experiment",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "experiments_assignment_experiment_id_0a04ebf1"',
                    reverse_sql='CREATE INDEX "experiments_assignment_experiment_id_0a04ebf1" '
                    'ON "experiments_assignment" ("experiment_id")',
                ),
            ],
        ),
    ]
