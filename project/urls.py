from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from liveblog.views import api
from project.media import media_urlpatterns
from project.viewer import SignOutView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", SignOutView.as_view(), name="logout"),
    path("", include("pwa.urls")),
    path("", include("liveblog.urls")),
    *media_urlpatterns(),
]

handler404 = api.not_found_handler
handler500 = api.server_error_handler
