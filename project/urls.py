from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from liveblog.views import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("pwa.urls")),
    path("", include("liveblog.urls")),
]

handler404 = api.not_found_handler
handler500 = api.server_error_handler
