from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.sitemaps.views import sitemap
from django.urls import include, path

from liveblog.sitemaps import BlogSitemap
from liveblog.views import api, pages
from project.i18n import set_language_view
from project.media import media_urlpatterns
from project.viewer import SignOutView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", SignOutView.as_view(), name="logout"),
    path("i18n/setlang/", set_language_view, name="set_language"),
    path("robots.txt", pages.robots_txt, name="robots"),
    path("sitemap.xml", sitemap, {"sitemaps": {"blogs": BlogSitemap}}, name="sitemap"),
    path("", include("pwa.urls")),
    path("", include("liveblog.urls")),
    *media_urlpatterns(),
]

handler404 = api.not_found_handler
handler500 = api.server_error_handler
