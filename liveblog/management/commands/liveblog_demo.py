import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from liveblog import services
from liveblog.models import Blog

DEFAULT_PASSWORD = "liveblog-demo"


class Command(BaseCommand):
    help = (
        "Create the demo blog and its author if they are missing, and print the login. "
        "For local use: the author is a superuser with a known password "
        f"(LIVEBLOG_DEMO_PASSWORD, default {DEFAULT_PASSWORD!r})."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default=os.environ.get("LIVEBLOG_DEMO_PASSWORD",
                                                                  DEFAULT_PASSWORD))
        parser.add_argument("--slug", default="demo")
        parser.add_argument("--title", default="Demo live blog")
        parser.add_argument("--url", default="http://127.0.0.1:8000",
                            help="the address to print")

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        User = get_user_model()
        author, created = User.objects.get_or_create(
            username=options["username"],
            defaults={"first_name": "Demo", "last_name": "Author", "is_staff": True,
                      "is_superuser": True},
        )
        if created:
            author.set_password(options["password"])
            author.save(update_fields=["password"])
        blog = Blog.objects.filter(slug=options["slug"]).first()
        if blog is None:
            blog = services.blog_create(
                actor=author, slug=options["slug"], title=options["title"],
                description="Try it: sign in, open the author console, and post.",
            )
        url = options["url"].rstrip("/")
        password = options["password"] if created or author.check_password(options["password"]) \
            else "(changed since it was created)"
        self.stdout.write(
            f"\n  Liveblog is at   {url}/\n"
            f"  Reader page      {url}/liveblog/{blog.slug}/\n"
            f"  Author console   {url}/liveblog/{blog.slug}/write/\n"
            f"  Demo login       {author.username} / {password}\n"
        )
