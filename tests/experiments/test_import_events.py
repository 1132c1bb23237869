"""`manage.py import_events PATH`: back-filling events from JSON lines or CSV, re-runnable."""

import io
import json
import uuid
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from experiments.models import EventItem, OutcomeEvent

pytestmark = pytest.mark.django_db


def _at(days_ago: float) -> str:
    return (timezone.now() - timedelta(days=days_ago)).isoformat()


def _order(customer: str, days_ago: float, lines: list[tuple[str, str, int, str]]) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "order_placed",
        "customer_id": customer,
        "occurred_at": _at(days_ago),
        "order_id": f"o-{customer}-{days_ago}",
        "amount": str(sum(Decimal(p) * q for _, _, q, p in lines)),
        "currency": "EUR",
        "items": [{"sku": s, "category": c, "quantity": q, "price": p} for s, c, q, p in lines],
    }


def _run(*args) -> str:
    out, err = StringIO(), StringIO()
    call_command("import_events", *args, stdout=out, stderr=err)
    return out.getvalue()


def test_json_lines_import_stores_events_and_summarises(tmp_path):
    events = [
        _order("c-1", 30, [("tent", "tents", 1, "199.00"), ("pegs", "accessories", 2, "4.50")]),
        _order("c-2", 20, [("lamp", "lighting", 1, "25.00")]),
        {**_order("c-3", 10, []), "currency": "EURO"},
    ]
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n\n{not json\n")

    output = _run(str(path))

    assert "4 events — accepted 2, duplicates 0, rejected 2" in output
    assert "line 3: currency: Unknown currency" in output
    assert "line 5: non_field_errors: Invalid JSON" in output
    assert OutcomeEvent.objects.count() == 2
    assert EventItem.objects.count() == 3
    assert OutcomeEvent.objects.get(customer_id="c-1").amount == Decimal("208.00")


def test_reimporting_the_same_file_reports_duplicates_and_changes_nothing(tmp_path):
    path = tmp_path / "history.ndjson"
    path.write_text("\n".join(json.dumps(_order(f"c-{i}", 5, [])) for i in range(30)))
    _run(str(path))

    output = _run(str(path))

    assert "30 events — accepted 0, duplicates 30, rejected 0" in output
    assert OutcomeEvent.objects.count() == 30


def test_csv_rows_with_one_event_id_become_one_order_with_its_lines(tmp_path):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    at = _at(3)
    header = (
        "event_id,type,customer_id,occurred_at,order_id,amount,currency,sku,category,quantity,price"
    )
    rows = [
        f"{first},order_placed,c-1,{at},o-1,57.00,EUR,tent,tents,1,49.00",
        f"{first},,,,,,,pegs,accessories,2,4.00",
        f"{second},order_returned,c-1,{at},o-1,4.00,EUR,pegs,accessories,1,4.00",
    ]
    path = tmp_path / "orders.csv"
    path.write_text("\ufeff" + "\n".join([header, *rows]) + "\n")  # with an Excel BOM

    output = _run(str(path))

    assert "2 events — accepted 2, duplicates 0, rejected 0" in output
    order = OutcomeEvent.objects.get(event_id=first)
    assert (order.type, order.amount, order.order_id) == ("order_placed", Decimal("57.00"), "o-1")
    lines = {i.sku: i.quantity for i in EventItem.objects.filter(event=order)}
    assert lines == {"tent": 1, "pegs": 2}
    assert OutcomeEvent.objects.get(event_id=second).type == "order_returned"


def test_bad_csv_rows_are_reported_by_line_and_written_to_the_rejects_file(tmp_path):
    at = _at(3)
    path = tmp_path / "orders.csv"
    path.write_text(
        "event_id,type,customer_id,occurred_at,sku,quantity\n"
        f"{uuid.uuid4()},product_viewed,c-1,{at},tent,1\n"
        f"{uuid.uuid4()},product_viewed,c-1,{at},tent,-3\n"
        f"not-an-id,product_viewed,c-1,{at},tent,1\n"
    )
    rejects = tmp_path / "rejects.jsonl"

    output = _run(str(path), "--rejects", str(rejects))

    assert "3 events — accepted 1, duplicates 0, rejected 2" in output
    assert "line 3: items: item 1 quantity Must be at least 1." in output
    assert "line 4: event_id: Must be a UUID" in output
    written = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [w["line"] for w in written] == [3, 4]
    assert written[1]["event"]["event_id"] == "not-an-id"


def test_large_files_are_sent_in_batches_of_the_configured_size(tmp_path, settings):
    settings.OFFERLAB_EVENT_MAX_BATCH = 7
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(json.dumps(_order(f"c-{i}", 1, [])) for i in range(50)))

    output = _run(str(path))

    assert "50 events — accepted 50" in output
    assert OutcomeEvent.objects.count() == 50


def test_csv_without_the_required_columns_is_refused(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("id,kind\n1,order\n")

    with pytest.raises(CommandError, match="customer_id"):
        _run(str(path))


def test_missing_file_and_unknown_format_are_command_errors(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        _run(str(tmp_path / "nope.jsonl"))
    odd = tmp_path / "events.txt"
    odd.write_text("")
    with pytest.raises(CommandError, match="--format"):
        _run(str(odd))


def test_dash_reads_json_lines_from_stdin(monkeypatch):
    lines = "\n".join(json.dumps(_order(f"c-{i}", 2, [])) for i in range(3)).encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(lines)))

    output = _run("-", "--format", "jsonl")

    assert "-: 3 events — accepted 3, duplicates 0, rejected 0" in output
    assert OutcomeEvent.objects.count() == 3
