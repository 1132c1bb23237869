"""Catalogue sync: bulk upsert by sku over the API and CSV import, with per-row errors."""

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from recommendations.models import Product

pytestmark = pytest.mark.django_db

URL = "/api/v1/products"


def row(sku, **fields):
    return {"sku": sku, "name": f"Name {sku}", "category": "cat", "price": "9.90", **fields}


def test_bulk_upsert_creates_then_updates_by_sku(storefront):
    first = storefront.post(URL, {"products": [row("a"), row("b", price=5)]}, format="json")
    assert first.status_code == 200
    assert first.json() == {"created": 2, "updated": 0, "rejected": []}

    second = storefront.post(
        URL, {"products": [row("a", name="Renamed", in_stock=False), row("c")]}, format="json"
    )
    assert second.json() == {"created": 1, "updated": 1, "rejected": []}
    a = Product.objects.get(sku="a")
    assert (a.name, a.in_stock, a.active) == ("Renamed", False, True)
    assert Product.objects.get(sku="b").price == Decimal("5.00")


def test_omitted_flags_keep_their_stored_value(storefront):
    storefront.post(URL, {"products": [row("a", active=False)]}, format="json")
    storefront.post(URL, {"products": [row("a", price="11.00")]}, format="json")
    a = Product.objects.get(sku="a")
    assert a.active is False and a.price == Decimal("11.00")


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("-1", "zero or more"),
        (-0.01, "zero or more"),
        ("abc", "valid number"),
        ("NaN", "valid number"),
        ("1.234", "2 decimal places"),
        (True, "valid number"),
        ({"amount": 3}, "valid number"),
    ],
)
def test_bad_price_rejects_only_that_row(storefront, price, message):
    response = storefront.post(
        URL, {"products": [row("good"), row("bad", price=price)]}, format="json"
    )
    body = response.json()
    assert response.status_code == 200
    assert body["created"] == 1
    assert [r["index"] for r in body["rejected"]] == [1]
    assert message in " ".join(body["rejected"][0]["errors"]["price"])
    assert list(Product.objects.values_list("sku", flat=True)) == ["good"]


def test_rows_missing_fields_or_not_objects_are_reported_per_row(storefront):
    rows = [row("ok"), {"sku": "x"}, "not-an-object", row("ok")]
    body = storefront.post(URL, {"products": rows}, format="json").json()
    rejected = {r["index"]: r["errors"] for r in body["rejected"]}
    assert set(rejected) == {1, 2, 3}
    assert {"name", "category", "price"} <= set(rejected[1])
    assert "non_field_errors" in rejected[2]
    assert "Duplicate sku" in rejected[3]["sku"][0]
    assert body["created"] == 1


def test_more_than_1000_products_is_refused_whole(storefront):
    response = storefront.post(
        URL, {"products": [row(f"s{i}") for i in range(1001)]}, format="json"
    )
    assert response.status_code == 400
    assert "products" in response.json()
    assert not Product.objects.exists()


def test_products_must_be_a_list(storefront):
    response = storefront.post(URL, {"products": {"sku": "a"}}, format="json")
    assert response.status_code == 400 and "products" in response.json()


def test_upsert_needs_an_api_key(anon, staff):
    assert anon.post(URL, {"products": [row("a")]}, format="json").status_code in (401, 403)
    assert staff.post(URL, {"products": [row("a")]}, format="json").status_code in (401, 403)


def test_import_catalog_imports_good_rows_and_reports_bad_lines(tmp_path, capsys):
    path = tmp_path / "catalog.csv"
    path.write_text(
        "sku,name,category,price,active,in_stock\n"
        "tent,Trail Tent,tents,199.00,true,yes\n"
        "stakes,Stakes {x},accessories,-3,,\n"
        "lamp,Lantern,lighting,twelve,,\n"
        "stove,Camp Stove,cooking,59,no,\n"
    )
    with pytest.raises(CommandError) as raised:
        call_command("import_catalog", str(path))
    assert raised.value.returncode == 2
    out, err = capsys.readouterr()
    assert "2 created" in out and "2 row(s) rejected" in out
    assert "line 3: price:" in err and "line 4: price:" in err
    assert set(Product.objects.values_list("sku", flat=True)) == {"tent", "stove"}
    assert Product.objects.get(sku="stove").active is False


def test_import_catalog_updates_existing_products_without_errors(tmp_path, capsys):
    Product.objects.create(sku="tent", name="Old", category="tents", price=1)
    path = tmp_path / "catalog.csv"
    path.write_text("sku,name,category,price\ntent,Trail Tent,tents,199.00\n")
    call_command("import_catalog", str(path))
    assert "0 created, 1 updated, 0 row(s) rejected" in capsys.readouterr().out
    assert Product.objects.get(sku="tent").name == "Trail Tent"


def test_import_catalog_refuses_a_file_without_the_required_columns(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_text("sku,title,price\na,b,1\n")
    with pytest.raises(CommandError, match="missing column"):
        call_command("import_catalog", str(path))


def test_import_catalog_reports_rows_with_too_many_or_too_few_cells(tmp_path, capsys):
    path = tmp_path / "catalog.csv"
    path.write_text(
        "sku,name,category,price\n"
        "tent,Trail Tent,tents,199.00\n"
        "stakes,Stakes,accessories,3.00,surprise\n"
        "lamp,Lantern\n"
    )
    with pytest.raises(CommandError):
        call_command("import_catalog", str(path))
    err = capsys.readouterr().err
    assert "line 3: row: 5 cells but the header has 4 columns" in err
    assert "line 4: category:" in err
    assert list(Product.objects.values_list("sku", flat=True)) == ["tent"]


def test_import_catalog_refuses_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "catalog.csv"
    path.write_bytes("sku,name,category,price\nmug,Tasse à café,kitchen,3\n".encode("latin-1"))
    with pytest.raises(CommandError, match="UTF-8"):
        call_command("import_catalog", str(path))


def test_text_with_a_nul_character_is_rejected_per_row(storefront):
    body = storefront.post(
        URL, {"products": [row("ok"), row("bad", name="Tent\x00")]}, format="json"
    ).json()
    assert [r["index"] for r in body["rejected"]] == [1]
    assert "name" in body["rejected"][0]["errors"]
