"""Index assignments by (experiment, assigned_at) instead of assigned_at alone: the analysis
reads an experiment's first assignment, and nothing reads assignments by time across
experiments. Same number of indexes to update per new assignment."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0005_assignment_experiment_served_by_unique_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="assignment",
            name="assigned_at",
            field=models.DateTimeField(),
        ),
        migrations.AddIndex(
            model_name="assignment",
            index=models.Index(
                fields=["experiment", "assigned_at"], name="assignment_experiment_time_idx"
            ),
        ),
    ]
