"""Routes under ``/api/`` (``path("api/", include("mcp_tools.api.urls"))``).

The event stream is routed before the router's URLs: it is an async Django
view beside the DRF viewsets, not one of their actions.
"""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from .auth import obtain_auth_token
from .sse import execution_events_view
from .views import ToolExecutionViewSet, ToolViewSet

app_name = "api"

router = DefaultRouter()
router.register("tools", ToolViewSet, basename="tool")
router.register("executions", ToolExecutionViewSet, basename="execution")

urlpatterns = [
    path("executions/<str:pk>/events/", execution_events_view, name="execution-events"),
    path("auth/token/", obtain_auth_token, name="token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("", include(router.urls)),
]
