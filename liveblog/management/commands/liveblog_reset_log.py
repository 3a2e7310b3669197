from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from liveblog import selectors, services
from liveblog.errors import LiveblogError


class Command(BaseCommand):
    help = (
        "Start a blog's event log over: a new epoch, no events, head 0. Posts stay. Every "
        "reader starts over from a snapshot (connected ones within one heartbeat). Use it to "
        "compact a long log, or after restoring a database backup."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--as", dest="username", default=None,
                            help="the staff user doing it (default: the first superuser)")

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        if options["username"]:
            actor = User.objects.filter(username=options["username"]).first()
        else:
            actor = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if actor is None:
            raise CommandError("no such staff user (use --as USERNAME)")
        try:
            blog = services.blog_log_reset(
                actor=actor, blog_id=selectors.blog_id(options["slug"])
            )
        except LiveblogError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        self.stdout.write(f"{blog.slug}: log reset, new epoch {blog.epoch}")
