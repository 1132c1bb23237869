"""bench/assign.py's urlconf: every production route plus a bare DRF endpoint as the baseline.

The bare endpoint goes through the same middleware, parses the JSON body and renders a JSON
response, with no authentication and no database: DRF's floor cost for a storefront call.
"""

from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as production_urlpatterns


class BareApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        return Response({"ok": True, "customer_id": request.data.get("customer_id")})


urlpatterns = [*production_urlpatterns, path("bench/bare", BareApi.as_view())]
