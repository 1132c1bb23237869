"""Admin for growth teams: catalogue, the relation review queue, served offers."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import F
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from recommendations import services
from recommendations.models import Offer, Product, ProductRelation, RelationStatus
from recommendations.selectors import invalidate_catalog


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "category", "price", "active", "in_stock", "updated_at"]
    list_filter = ["active", "in_stock", "category"]
    search_fields = ["sku", "name", "category"]


def _ratio(value) -> str:
    return "—" if value is None else f"{value:.1%}"


@admin.register(ProductRelation)
class ProductRelationAdmin(admin.ModelAdmin):
    """The review queue: mined candidates sorted by lift, with the figures behind each."""

    list_display = [
        "relation",
        "kind",
        "origin",
        "status",
        "pinned",
        "pair_count",
        "support_pct",
        "confidence_pct",
        "confidence_reverse_pct",
        "lift_x",
        "orders",
    ]
    list_filter = ["status", "origin", "kind", "pinned"]
    search_fields = ["source__sku", "source__name", "target__sku", "target__name"]
    list_select_related = ["source", "target"]
    autocomplete_fields = ["source", "target"]
    actions = ["approve", "reject", "pin", "unpin"]
    readonly_fields = [
        "origin",
        "pair_count",
        "support",
        "confidence",
        "confidence_reverse",
        "lift",
        "sample_orders",
        "mined_at",
        "reviewed_by",
        "reviewed_at",
    ]
    fields = [
        ("source", "target", "kind"),
        ("status", "pinned", "score"),
        "origin",
        ("pair_count", "support", "lift"),
        ("confidence", "confidence_reverse"),
        "sample_orders",
        ("mined_at", "reviewed_by", "reviewed_at"),
    ]

    def get_ordering(self, request):
        return [F("lift").desc(nulls_last=True), "-pinned", "id"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None:
            fields += ["source", "target", "kind"]
        return fields

    def save_model(self, request, obj, form, change):
        try:
            if not change:
                saved, _ = services.relation_create_curated(
                    source=obj.source.sku,
                    target=obj.target.sku,
                    kind=obj.kind,
                    pinned=obj.pinned,
                    actor=request.user,
                )
                obj.pk = saved.pk
                return
            if "score" in form.changed_data:
                ProductRelation.objects.filter(pk=obj.pk).update(
                    score=obj.score, updated_at=timezone.now()
                )
                invalidate_catalog()
            if {"status", "pinned"} & set(form.changed_data):
                services.relation_review(
                    relation=obj, status=obj.status, pinned=obj.pinned, actor=request.user
                )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)

    @admin.display(description="relation", ordering="source__sku")
    def relation(self, obj):
        return f"{obj.source.sku} → {obj.target.sku}"

    @admin.display(description="support", ordering="support")
    def support_pct(self, obj):
        return _ratio(obj.support)

    @admin.display(description="P(target | source)", ordering="confidence")
    def confidence_pct(self, obj):
        return _ratio(obj.confidence)

    @admin.display(description="P(source | target)", ordering="confidence_reverse")
    def confidence_reverse_pct(self, obj):
        return _ratio(obj.confidence_reverse)

    @admin.display(description="lift", ordering="lift")
    def lift_x(self, obj):
        return "—" if obj.lift is None else format_html("{}×", f"{obj.lift:.2f}")

    @admin.display(description="orders with both")
    def orders(self, obj):
        return ", ".join(obj.sample_orders or []) or "—"

    def _review(self, request, queryset, verb, **decision):
        changed, problems = services.relations_review_many(
            relations=list(queryset), actor=request.user, **decision
        )
        self.message_user(request, f"{verb} {changed} relation(s).", messages.SUCCESS)
        for problem in problems:
            self.message_user(request, problem, messages.ERROR)

    @admin.action(description="Approve (serve)", permissions=["change"])
    def approve(self, request, queryset):
        self._review(request, queryset, "Approved", status=RelationStatus.APPROVED)

    @admin.action(description="Reject / block (never serve)", permissions=["change"])
    def reject(self, request, queryset):
        self._review(request, queryset, "Rejected", status=RelationStatus.REJECTED)

    @admin.action(description="Pin (serve first; approves)", permissions=["change"])
    def pin(self, request, queryset):
        self._review(request, queryset, "Pinned", pinned=True)

    @admin.action(description="Unpin", permissions=["change"])
    def unpin(self, request, queryset):
        self._review(request, queryset, "Unpinned", pinned=False)

    def get_urls(self):
        mine = path(
            "mine/",
            self.admin_site.admin_view(self.mine_view),
            name="recommendations_productrelation_mine",
        )
        return [mine, *super().get_urls()]

    def mine_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        services.mining_request()
        self.message_user(
            request,
            "Mining queued: new candidates appear here as pending, sorted by lift.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:recommendations_productrelation_changelist"))


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    list_display = ["offer_id", "customer_id", "trigger", "experiment", "variant", "channel"]
    list_filter = ["trigger", "channel", "experiment"]
    search_fields = ["customer_id", "=offer_id"]
    list_select_related = ["experiment", "variant"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
