from django.urls import path

from . import feeds
from .views import api, pages

urlpatterns = [
    path("", pages.blog_index, name="blog-index"),
    path("liveblog/<slug:slug>/", pages.blog_reader, name="blog-reader"),
    path("liveblog/<slug:slug>/write/", pages.blog_console, name="blog-console"),
    path("liveblog/<slug:slug>/feed/", feeds.blog_feed, name="blog-feed"),
    path("liveblog/<slug:slug>/embed/", pages.blog_embed, name="blog-embed"),
    path("embed.js", pages.embed_script, name="embed-script"),
    path("api/oembed", api.oembed, name="api-oembed"),
    path("api/openapi.json", api.openapi_document, name="api-openapi"),
    path("api/liveblog/", api.blogs, name="api-blogs"),
    path("api/liveblog/<slug:slug>/", api.blog_detail, name="api-blog"),
    path("api/liveblog/<slug:slug>/posts", api.posts, name="api-posts"),
    path("api/liveblog/<slug:slug>/posts/<int:post_id>", api.post_detail, name="api-post"),
    path("api/liveblog/<slug:slug>/events", api.events, name="api-events"),
]
