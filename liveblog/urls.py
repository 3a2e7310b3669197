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
    path("api/push/key", api.push_key, name="api-push-key"),
    path("api/liveblog/", api.blogs, name="api-blogs"),
    path("api/liveblog/<slug:slug>/", api.blog_detail, name="api-blog"),
    path("api/liveblog/<slug:slug>/posts", api.posts, name="api-posts"),
    path("api/liveblog/<slug:slug>/posts/<int:post_id>", api.post_detail, name="api-post"),
    path("api/liveblog/<slug:slug>/events", api.events, name="api-events"),
    path("api/liveblog/<slug:slug>/desk", api.desk, name="api-desk"),
    path("api/liveblog/<slug:slug>/submissions/<int:submission_id>", api.submission_detail,
         name="api-submission"),
    path("api/liveblog/<slug:slug>/submissions/<int:submission_id>/publish",
         api.submission_publish, name="api-submission-publish"),
    path("api/liveblog/<slug:slug>/submissions/<int:submission_id>/return",
         api.submission_return, name="api-submission-return"),
    # DESIGN.md's names for the same two (the id is the submission's, from the 202).
    path("api/liveblog/<slug:slug>/posts/<int:submission_id>/publish", api.submission_publish,
         name="api-post-publish"),
    path("api/liveblog/<slug:slug>/posts/<int:submission_id>/return", api.submission_return,
         name="api-post-return"),
    path("api/liveblog/<slug:slug>/push", api.push_subscription, name="api-push"),
    path("api/liveblog/<slug:slug>/members", api.members, name="api-members"),
    path("api/liveblog/<slug:slug>/members/<str:username>", api.member_detail,
         name="api-member"),
]
