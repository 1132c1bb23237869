"""Writes: the catalogue (bulk upsert by sku) and product relations (curation and review)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config.exceptions import NotFound
from recommendations.models import (
    Product,
    ProductRelation,
    RelationKind,
    RelationOrigin,
    RelationStatus,
)
from recommendations.selectors import invalidate_catalog

MAX_PRODUCTS_PER_BATCH = 1000
CURATED_SCORE = 1.0  # above any mined confidence, so a person's choice ranks first
_TRUE = {"true", "1", "yes", "y", "t", "on"}
_FALSE = {"false", "0", "no", "n", "f", "off"}
_MAX_PRICE = Decimal("9999999999.99")


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    rejected: list[dict] = field(default_factory=list)


def _text(raw: Mapping, name: str, max_length: int, errors: dict) -> str | None:
    value = raw.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        errors[name] = ["This field is required."]
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        errors[name] = ["Must be text."]
        return None
    value = str(value).strip()
    if "\x00" in value:
        errors[name] = ["Null characters are not allowed."]
        return None
    if len(value) > max_length:
        errors[name] = [f"At most {max_length} characters."]
        return None
    return value


def _price(raw: Mapping, errors: dict) -> Decimal | None:
    value = raw.get("price")
    if value is None or (isinstance(value, str) and not value.strip()):
        errors["price"] = ["This field is required."]
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        errors["price"] = ["A valid number is required."]
        return None
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        errors["price"] = [f"A valid number is required (got {str(value)[:40]!r})."]
        return None
    if not price.is_finite():
        errors["price"] = ["A valid number is required."]
    elif price < 0:
        errors["price"] = ["Must be zero or more (a zero price is stored but never recommended)."]
    elif price > _MAX_PRICE:
        errors["price"] = ["Must be at most 9999999999.99."]
    elif price != price.quantize(Decimal("0.01")):
        errors["price"] = ["At most 2 decimal places."]
    else:
        return price.quantize(Decimal("0.01"))
    return None


def _flag(raw: Mapping, name: str, errors: dict) -> bool | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str | int) and str(value).strip().lower() in _TRUE:
        return True
    if isinstance(value, str | int) and str(value).strip().lower() in _FALSE:
        return False
    errors[name] = ["Must be true or false."]
    return None


def product_row_clean(raw: object) -> tuple[dict | None, dict]:
    """(clean row, {}) or (None, {field: [messages]}) for one catalogue row."""
    if not isinstance(raw, Mapping):
        return None, {"non_field_errors": ["Each product must be an object."]}
    errors: dict = {}
    row = {
        "sku": _text(raw, "sku", 100, errors),
        "name": _text(raw, "name", 255, errors),
        "category": _text(raw, "category", 100, errors),
        "price": _price(raw, errors),
        "active": _flag(raw, "active", errors),
        "in_stock": _flag(raw, "in_stock", errors),
    }
    return (None, errors) if errors else (row, {})


def products_upsert(*, rows: Sequence[object], first_index: int = 0) -> UpsertResult:
    """Create or update products by sku; invalid rows are reported, the others saved.

    `active` / `in_stock` left out keep their stored value (True for a new product). A sku that
    appears twice in one batch keeps the first row and rejects the later one. Rejections name
    the row by `first_index + position`.
    """
    if len(rows) > MAX_PRODUCTS_PER_BATCH:
        raise ValidationError(
            {"products": [f"At most {MAX_PRODUCTS_PER_BATCH} products per request."]}
        )
    result = UpsertResult()
    clean: dict[str, dict] = {}
    for position, raw in enumerate(rows):
        row, errors = product_row_clean(raw)
        if row is not None and row["sku"] in clean:
            errors = {"sku": [f"Duplicate sku '{row['sku']}' in this batch."]}
        if errors:
            result.rejected.append({"index": first_index + position, "errors": errors})
            continue
        clean[row["sku"]] = row
    if not clean:
        return result
    with transaction.atomic():
        existing = {
            sku: (active, in_stock)
            for sku, active, in_stock in Product.objects.filter(sku__in=list(clean)).values_list(
                "sku", "active", "in_stock"
            )
        }
        now = timezone.now()
        objects = []
        for sku, row in clean.items():
            stored_active, stored_in_stock = existing.get(sku, (True, True))
            objects.append(
                Product(
                    sku=sku,
                    name=row["name"],
                    category=row["category"],
                    price=row["price"],
                    active=stored_active if row["active"] is None else row["active"],
                    in_stock=stored_in_stock if row["in_stock"] is None else row["in_stock"],
                    updated_at=now,
                )
            )
        Product.objects.bulk_create(
            objects,
            update_conflicts=True,
            unique_fields=["sku"],
            update_fields=["name", "category", "price", "active", "in_stock", "updated_at"],
        )
        invalidate_catalog()
    result.updated = sum(1 for sku in clean if sku in existing)
    result.created = len(clean) - result.updated
    return result


def _product(sku: object, field_name: str) -> Product:
    product = Product.objects.filter(sku=str(sku)).first() if sku else None
    if product is None:
        raise NotFound(f"No product with sku '{sku}'.", field=field_name)
    return product


@transaction.atomic
def relation_create_curated(
    *, source: str, target: str, kind: str, pinned: bool = False, actor=None
) -> tuple[ProductRelation, bool]:
    """A person's relation, approved at once. (relation, created).

    If the pair already exists (e.g. a mined candidate), it is approved and pinned as asked
    rather than duplicated; its origin and co-purchase figures stay.
    """
    if kind not in RelationKind.values:
        raise ValidationError({"kind": [f"Must be one of {', '.join(RelationKind.values)}."]})
    source_product = _product(source, "source")
    target_product = _product(target, "target")
    if source_product.pk == target_product.pk:
        raise ValidationError({"target": ["A product cannot be related to itself."]})
    now = timezone.now()
    relation, created = ProductRelation.objects.select_for_update().get_or_create(
        source=source_product,
        target=target_product,
        kind=kind,
        defaults={
            "origin": RelationOrigin.CURATED,
            "status": RelationStatus.APPROVED,
            "pinned": pinned,
            "score": CURATED_SCORE,
            "reviewed_by": actor,
            "reviewed_at": now,
        },
    )
    if not created:
        relation.status = RelationStatus.APPROVED
        relation.pinned = pinned
        relation.reviewed_by = actor
        relation.reviewed_at = now
        relation.save(
            update_fields=["status", "pinned", "reviewed_by", "reviewed_at", "updated_at"]
        )
    invalidate_catalog()
    return relation, created


@transaction.atomic
def relation_review(
    *,
    relation: ProductRelation,
    status: str | None = None,
    pinned: bool | None = None,
    actor=None,
) -> ProductRelation:
    """A person's decision on a relation: approve, reject (block), pin or unpin.

    Pinning a pending relation approves it; rejecting unpins it; a rejected relation cannot be
    pinned. Decisions are recorded (who, when) and never undone by re-mining.
    """
    relation = ProductRelation.objects.select_for_update().get(pk=relation.pk)
    if status is not None and status not in RelationStatus.values:
        raise ValidationError({"status": [f"Must be one of {', '.join(RelationStatus.values)}."]})
    new_status = status or relation.status
    new_pinned = relation.pinned if pinned is None else bool(pinned)
    if new_pinned and new_status == RelationStatus.REJECTED:
        if status == RelationStatus.REJECTED and pinned is None:
            new_pinned = False
        else:
            raise ValidationError(
                {"pinned": ["A rejected (blocked) relation cannot be pinned; approve it first."]}
            )
    if new_pinned and new_status == RelationStatus.PENDING:
        new_status = RelationStatus.APPROVED
    relation.status = new_status
    relation.pinned = new_pinned
    relation.reviewed_by = actor
    relation.reviewed_at = timezone.now()
    relation.save(update_fields=["status", "pinned", "reviewed_by", "reviewed_at", "updated_at"])
    invalidate_catalog()
    return relation


def relations_review_many(
    *, relations: Sequence[ProductRelation], status=None, pinned=None, actor=None
) -> tuple[int, list[str]]:
    """Apply one decision to several relations (admin actions). (changed, error messages)."""
    changed, problems = 0, []
    for relation in relations:
        try:
            relation_review(relation=relation, status=status, pinned=pinned, actor=actor)
            changed += 1
        except ValidationError as exc:
            problems.append(f"{relation}: {' '.join(exc.messages)}")
    return changed, problems


def mining_request() -> None:
    """Queue a co-purchase mining run once the current transaction commits."""
    from recommendations.tasks import mine_relations_task

    transaction.on_commit(mine_relations_task.delay)
