"""The demo account and blog that `make run` prepares (the `liveblog_demo` command's writes).

The rule: a password anyone can read in the README is only ever set on a loopback address,
where nobody else can reach the site. On any other address (`HOST=0.0.0.0` for a phone on the
LAN) the account gets a random password, shown once, and an account still holding the
published one from an earlier loopback run gets a random one instead. The account is an author
(and the owner) of the demo blog only — never staff or superuser, so even the published
password opens one blog, not the admin or other blogs; an older demo superuser is demoted.

A second account, the demo contributor (`reporter`), follows the same password rule and is a
contributor of the demo blog: what it posts goes to the desk, where the demo author publishes it.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from .models import Blog, Membership

PUBLISHED_PASSWORD = "liveblog-demo"
# The names older versions gave their demo superuser: such an account is the demo's to demote.
OLD_DEMO_NAME = ("Demo", "Author")


@dataclass(frozen=True)
class DemoLogin:
    username: str
    # None: the account kept a password this command did not set and cannot show.
    password: str | None
    blog: Blog
    # True when the password is random, made now, and shown this once.
    random: bool = False
    # The demo contributor's login, the same way (None when not asked for).
    contributor: DemoLogin | None = None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost; 0.0.0.0 (every interface) and names are not."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _password_for(user: Any, chosen: str | None, loopback: bool) -> tuple[str | None, bool]:
    """(the password to set now, or None to keep the account's; whether it is random)."""
    wanted = chosen or PUBLISHED_PASSWORD
    if wanted == PUBLISHED_PASSWORD and not loopback:
        wanted = None  # never published beyond loopback
    must_set = user is None or not loopback and user.check_password(PUBLISHED_PASSWORD)
    if not must_set:
        return None, False
    return (wanted, False) if wanted else (secrets.token_urlsafe(12), True)


def _demote(user: Any) -> None:
    """An account this command gave rights to in older versions loses them."""
    old_demo = (user.first_name, user.last_name) == OLD_DEMO_NAME
    if (user.is_staff or user.is_superuser) and (old_demo or user.check_password(
            PUBLISHED_PASSWORD)):
        user.is_staff = user.is_superuser = False
        user.save(update_fields=["is_staff", "is_superuser"])


@transaction.atomic
def demo_ensure(*, username: str, slug: str, title: str, password: str | None,
                loopback: bool, contributor: str | None = None) -> DemoLogin:
    """The demo account and blog (and the demo contributor, when named), made or brought up to
    the rule above; idempotent."""
    user, shown, random = _account(username, ("Demo", "Author"), password, loopback)
    blog = _demo_blog(user, slug, title)
    reporter = None
    if contributor and contributor != username:
        member, member_shown, member_random = _account(
            contributor, ("Demo", "Reporter"), password, loopback
        )
        if member != blog.owner:
            Membership.objects.get_or_create(
                blog=blog, user=member, defaults={"role": Membership.Role.CONTRIBUTOR}
            )
        reporter = DemoLogin(username=member.username, password=member_shown, blog=blog,
                             random=member_random)
    return DemoLogin(username=user.username, password=shown, blog=blog, random=random,
                     contributor=reporter)


def _account(username: str, name: tuple[str, str], password: str | None,
             loopback: bool) -> tuple[Any, str | None, bool]:
    """(the account, the password to show or None, whether it is random and new)."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    new_password, random = _password_for(user, password, loopback)
    if user is None:
        user = User.objects.create_user(username, first_name=name[0], last_name=name[1])
    _demote(user)
    if new_password is not None:
        user.set_password(new_password)
        user.save(update_fields=["password"])
    return user, new_password or _known_password(user, password), random


def _known_password(user: Any, chosen: str | None) -> str | None:
    candidate = chosen or PUBLISHED_PASSWORD
    return candidate if user.check_password(candidate) else None


def _demo_blog(user: Any, slug: str, title: str) -> Blog:
    """The demo blog, owned by the demo account when this makes it; the account an author."""
    blog = Blog.objects.filter(slug=slug).first()
    if blog is None:
        # The operator makes it, not the account: blog creation is staff-only in services.
        blog = Blog.objects.create(
            slug=slug, title=title, owner=user,
            description="Try it: sign in, open the author console, and post.",
        )
    blog.authors.add(user)
    return blog
