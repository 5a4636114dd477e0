from django.contrib import admin
from django.urls import include, path

from mcp_tools import health, web

urlpatterns = [
    path("admin/monitor/", include("mcp_tools.admin_monitor")),
    path("admin/", admin.site.urls),
    path("api/", include("mcp_tools.api.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("favicon.ico", web.favicon),
    path("health/", health.health, name="health"),
    path("", web.index, name="index"),
]
