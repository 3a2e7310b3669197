import os
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand

from liveblog.demo import PUBLISHED_PASSWORD, DemoLogin, demo_ensure, is_loopback


class Command(BaseCommand):
    help = (
        "Create the demo blog and its author if they are missing, and print the login. On a "
        f"loopback --url the author's password is {PUBLISHED_PASSWORD!r} (or "
        "LIVEBLOG_DEMO_PASSWORD); on any other address a random one, shown once. The author "
        "writes to the demo blog only: not staff, not a superuser."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--contributor", default="reporter",
                            help="the demo contributor's username ('' for none)")
        parser.add_argument("--password", default=os.environ.get("LIVEBLOG_DEMO_PASSWORD"),
                            help=f"default {PUBLISHED_PASSWORD!r}, on loopback only")
        parser.add_argument("--slug", default="demo")
        parser.add_argument("--title", default="Demo live blog")
        parser.add_argument("--url", default="http://127.0.0.1:8000",
                            help="the address served; decides whether it is loopback")

    def handle(self, *args, **options) -> None:
        url = options["url"].rstrip("/")
        login = demo_ensure(
            username=options["username"], slug=options["slug"], title=options["title"],
            password=options["password"], loopback=is_loopback(urlsplit(url).hostname or ""),
            contributor=options["contributor"],
        )
        slug = login.blog.slug
        self.stdout.write(
            f"\n  Liveblog is at   {url}/\n"
            f"  Reader page      {url}/liveblog/{slug}/\n"
            f"  Author console   {url}/liveblog/{slug}/write/\n"
            f"  Demo login       {login.username} / {self._password(login)}\n"
        )
        if login.contributor is not None:
            self.stdout.write(
                f"  Contributor      {login.contributor.username} / "
                f"{self._password(login.contributor)}\n"
                "                   (submits to the desk; the demo login publishes)\n"
            )

    @staticmethod
    def _password(login: DemoLogin) -> str:
        if login.random:
            return (f"{login.password}\n                   (random, shown this once: the "
                    "address is not loopback; `manage.py changepassword "
                    f"{login.username}` sets another)")
        if login.password is None:
            return (f"(unchanged; `manage.py changepassword {login.username}` sets one)")
        return login.password
