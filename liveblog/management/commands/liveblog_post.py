import uuid
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from liveblog import protocol, selectors, services
from liveblog.errors import Invalid, LiveblogError


def _time(text: str) -> datetime:
    try:
        return protocol.as_time(text, "--publish-at")
    except Invalid as error:
        raise ValueError(error.detail) from None


class Command(BaseCommand):
    help = (
        "Publish a post to a blog as one of its editors or its owner, or submit it to the desk "
        "as a contributor (the same service as the API)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("username")
        parser.add_argument("body", help="Markdown")
        parser.add_argument("--client-id", type=uuid.UUID, default=None,
                            help="makes the command safe to retry (default: a new UUID)")
        parser.add_argument("--key-event", action="store_true")
        parser.add_argument("--pinned", action="store_true")
        parser.add_argument("--publish-at", type=_time, default=None,
                            help="ISO 8601 with a zone: schedule it (editors, owner)")

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
                publish_at=options["publish_at"],
            )
        except LiveblogError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        if written.desk:  # no post and no seq yet: it waits on the desk
            submission = written.data
            already = "" if written.created else "already "
            when = (f"scheduled for {submission['publish_at']}"
                    if submission["state"] == "scheduled" else submission["state"])
            self.stdout.write(f"{already}submitted to the desk as submission "
                              f"#{submission['id']} ({when}); not public until it is "
                              "published")
            return
        verb = "posted" if written.created else "already posted"
        self.stdout.write(f"{verb} #{written.data['id']} as seq {written.seq}")
