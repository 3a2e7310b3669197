import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from liveblog import selectors, services
from liveblog.errors import LiveblogError


class Command(BaseCommand):
    help = "Publish a post to a blog as one of its authors (the same service as the API)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("username")
        parser.add_argument("body", help="Markdown")
        parser.add_argument("--client-id", type=uuid.UUID, default=None,
                            help="makes the command safe to retry (default: a new UUID)")
        parser.add_argument("--key-event", action="store_true")
        parser.add_argument("--pinned", action="store_true")

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        try:
            author = User.objects.get_by_natural_key(options["username"])
        except User.DoesNotExist:
            raise CommandError(f"no user {options['username']!r}") from None
        try:
            written = services.post_create(
                actor=author,
                blog_id=selectors.blog_id(options["slug"]),
                client_id=options["client_id"] or uuid.uuid4(),
                body=options["body"],
                key_event=options["key_event"],
                pinned=options["pinned"],
            )
        except LiveblogError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        verb = "posted" if written.created else "already posted"
        self.stdout.write(f"{verb} #{written.data['id']} as seq {written.seq}")
