"""`/sitemap.xml`: every blog's reader page, `lastmod` from its last event (one query)."""

from django.contrib.sitemaps import Sitemap
from django.db.models import DateTimeField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse

from .models import Blog, Event


class BlogSitemap(Sitemap):
    changefreq = "always"  # a live blog changes by the minute while it runs

    def items(self) -> QuerySet[Blog]:
        last_event = Event.objects.filter(blog=OuterRef("pk"), seq=OuterRef("head"))
        return Blog.objects.annotate(
            last_at=Coalesce(Subquery(last_event.values("created_at")[:1]), "created_at",
                             output_field=DateTimeField()),
        ).order_by("pk")

    def location(self, blog: Blog) -> str:
        return reverse("blog-reader", args=[blog.slug])

    def lastmod(self, blog: Blog):
        return blog.last_at
