from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from liveblog import selectors, services
from liveblog.errors import LiveblogError
from liveblog.models import Membership


class Command(BaseCommand):
    help = (
        "Give someone a role on a blog (editor: publishes; contributor: submits to the desk), "
        "or take them off it with --remove. Done as the blog's owner or a staff user "
        "(--as; default the first superuser), through the same service as the API."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug")
        parser.add_argument("username", help="the person whose role changes")
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--role", choices=Membership.Role.values)
        action.add_argument("--remove", action="store_true")
        parser.add_argument("--as", dest="actor", default=None,
                            help="the owner or staff user doing it (default: the first "
                                 "superuser)")

    def handle(self, *args, **options) -> None:
        actor = self._actor(options["actor"])
        try:
            blog_id = selectors.blog_id(options["slug"])
            user = selectors.user_by_username(options["username"])
            if options["remove"]:
                services.member_remove(actor=actor, blog_id=blog_id, user=user)
                self.stdout.write(f"{options['slug']}: {user.get_username()} removed")
                return
            member = services.member_set(
                actor=actor, blog_id=blog_id, user=user, role=options["role"]
            )
        except LiveblogError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        self.stdout.write(f"{options['slug']}: {member['username']} is {member['role']}")

    @staticmethod
    def _actor(username: str | None):
        User = get_user_model()
        if username:
            actor = User.objects.filter(username=username).first()
        else:
            actor = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if actor is None:
            raise CommandError("no such user to act as (use --as USERNAME)")
        return actor
