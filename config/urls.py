from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from mcp_tools import health, web
from mcp_tools.metrics.views import metrics_view

urlpatterns = [
    path("admin/monitor/", include("mcp_tools.admin_monitor")),
    path("admin/", admin.site.urls),
    path("api/", include("mcp_tools.api.urls")),
    # Log in and out only: Django's password-reset views mail a link built from the request's
    # Host, which a forged Host (ALLOWED_HOSTS='*') would point at someone else's site.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("favicon.ico", web.favicon),
    path("metrics", metrics_view, name="metrics"),  # Prometheus: staff tokens and METRICS_BEARER_TOKEN only
    path("", include("mcp_tools.mcp.urls")),  # OAuth for MCP clients: /o/ and /.well-known/ (docs/mcp.md)
    path("health/", health.health, name="health"),
    path("", web.index, name="index"),
]
