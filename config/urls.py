from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include("experiments.urls")),
    path("api/v1/", include("recommendations.urls")),
    path("api/v1/feedback/", include("feedback.urls")),
    path("feedback/", include("feedback.page_urls")),
]

admin.site.site_header = "Offerlab"
admin.site.site_title = "Offerlab admin"
admin.site.index_title = "Cross-sell experiments"

handler404 = "config.views.not_found"
handler500 = "config.views.server_error_json"
