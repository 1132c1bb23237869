"""Index assignments by (experiment, assigned_at) instead of assigned_at alone: the analysis
reads an experiment's first assignment, and nothing reads assignments by time across
experiments. Same number of indexes to update per new assignment.

On PostgreSQL the index is built and the old one dropped CONCURRENTLY (so the migration does
not run in a transaction): assignments and offers keep being written while it builds."""

from django.db import migrations, models

TABLE = "experiments_assignment"
NEW = "assignment_experiment_time_idx"
OLD = "experiments_assignment_assigned_at_d6b39ac3"


def _concurrently(schema_editor) -> str:
    return " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""


def forwards(apps, schema_editor):
    how = _concurrently(schema_editor)
    schema_editor.execute(
        f'CREATE INDEX{how} IF NOT EXISTS "{NEW}" ON "{TABLE}" ("experiment_id", "assigned_at")'
    )
    schema_editor.execute(f'DROP INDEX{how} IF EXISTS "{OLD}"')


def backwards(apps, schema_editor):
    how = _concurrently(schema_editor)
    schema_editor.execute(f'CREATE INDEX{how} IF NOT EXISTS "{OLD}" ON "{TABLE}" ("assigned_at")')
    schema_editor.execute(f'DROP INDEX{how} IF EXISTS "{NEW}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("experiments", "0005_assignment_experiment_served_by_unique_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="assignment",
                    name="assigned_at",
                    field=models.DateTimeField(),
                ),
                migrations.AddIndex(
                    model_name="assignment",
                    index=models.Index(fields=["experiment", "assigned_at"], name=NEW),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
