"""Drop five indexes that a composite index already starts with: Display.customer_id (and its
LIKE index on PostgreSQL) is the prefix of display_cooldown_idx, Display.survey of
display_unique_offer, Response.survey of response_unique_offer, Answer.response of answer_unique
and Answer.question of the (question, numeric_value) index.

Only the indexes go: Django's AlterField would also drop and re-add each foreign key, whose
validation scans its table under a lock that stops every display insert (so every sampled
offer) until the migration commits. On PostgreSQL the indexes are dropped CONCURRENTLY, so the
migration does not run in a transaction."""

import django.db.models.deletion
from django.db import migrations, models

# (index, table, column definition for the way back)
INDEXES = [
    ("feedback_display_customer_id_dfd2dd39", "feedback_display", '"customer_id"'),
    (
        "feedback_display_customer_id_dfd2dd39_like",
        "feedback_display",
        '"customer_id" varchar_pattern_ops',
    ),
    ("feedback_display_survey_id_c66d3308", "feedback_display", '"survey_id"'),
    ("feedback_response_survey_id_822a3c11", "feedback_response", '"survey_id"'),
    ("feedback_answer_response_id_7a14ef5c", "feedback_answer", '"response_id"'),
    ("feedback_answer_question_id_2ab680d7", "feedback_answer", '"question_id"'),
]


def _concurrently(schema_editor) -> str:
    return " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""


def forwards(apps, schema_editor):
    how = _concurrently(schema_editor)
    for name, _, _ in INDEXES:
        schema_editor.execute(f'DROP INDEX{how} IF EXISTS "{name}"')


def backwards(apps, schema_editor):
    how = _concurrently(schema_editor)
    postgres = schema_editor.connection.vendor == "postgresql"
    for name, table, columns in INDEXES:
        if "varchar_pattern_ops" in columns and not postgres:
            continue
        schema_editor.execute(f'CREATE INDEX{how} IF NOT EXISTS "{name}" ON "{table}" ({columns})')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("feedback", "0003_question_labels_display_shown_at"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="answer",
                    name="question",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="answers",
                        to="feedback.question",
                    ),
                ),
                migrations.AlterField(
                    model_name="answer",
                    name="response",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="answer_rows",
                        to="feedback.response",
                    ),
                ),
                migrations.AlterField(
                    model_name="display",
                    name="customer_id",
                    field=models.CharField(max_length=255),
                ),
                migrations.AlterField(
                    model_name="display",
                    name="survey",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="displays",
                        to="feedback.survey",
                    ),
                ),
                migrations.AlterField(
                    model_name="response",
                    name="survey",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="responses",
                        to="feedback.survey",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
