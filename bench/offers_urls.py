"""bench/offers.py's urlconf: every production route plus a bare DRF endpoint as the baseline.

The bare endpoint does what every storefront call does — API-key authentication, JSON parsing,
a JSON response — and nothing else, so the ratio isolates the cost of serving an offer.
"""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as production_urlpatterns
from experiments.apikeys import StorefrontApiMixin


class BareApi(StorefrontApiMixin, APIView):
    def post(self, request):
        return Response({"ok": True, "customer_id": request.data.get("customer_id")}, status=201)


urlpatterns = [*production_urlpatterns, path("bench/bare", BareApi.as_view())]
