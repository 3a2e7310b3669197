"""Who may write what. Every write path (HTTP, websocket, admin, commands) asks these, and the
services ask them again against the rows they lock.

Roles per blog (README, "The desk"): the **owner** (and superusers) publish and manage the blog
and its people; **editors** publish directly, edit any post, and publish or return what
contributors submit; **contributors** submit posts to the desk and revise or withdraw them while
they wait. Staff manage every blog (title, status, roles) without writing posts unless they are
members too.
"""

from typing import Any

from .models import Blog, Membership, Post, Submission

OWNER = "owner"
EDITOR = Membership.Role.EDITOR.value
CONTRIBUTOR = Membership.Role.CONTRIBUTOR.value
PUBLISHING_ROLES = frozenset({OWNER, EDITOR})


def _active(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def role_of(user: Any, blog: Blog) -> str | None:
    """"owner", "editor", "contributor", or None for someone who does not write for the blog.
    One query for a member (none for the owner or a superuser)."""
    if not _active(user):
        return None
    if user.is_superuser or blog.owner_id == user.pk:
        return OWNER
    return (
        Membership.objects.filter(blog=blog, user=user).values_list("role", flat=True).first()
    )


def can_post(user: Any, blog: Blog) -> bool:
    """Writes for the blog in any role: publishes, or submits to the desk."""
    return role_of(user, blog) is not None


def can_publish(user: Any, blog: Blog) -> bool:
    """Publishes directly and decides on submissions: the owner and editors."""
    return role_of(user, blog) in PUBLISHING_ROLES


def can_manage_blog(user: Any, blog: Blog) -> bool:
    """Title, status, embedding and roles: the owner and staff."""
    return _active(user) and (user.is_staff or blog.owner_id == user.pk)


def can_edit_post(user: Any, blog: Blog, post: Post) -> bool:
    """A published post: whoever publishes on the blog (an editor's job is to edit).
    Contributors change nothing public; they send a correction to the desk instead."""
    return can_publish(user, blog)


def can_revise_submission(user: Any, blog: Blog, submission: Submission) -> bool:
    """Revise or withdraw a submission: its own author, or an editor."""
    return (_active(user) and submission.author_id == user.pk and can_post(user, blog)) or (
        can_publish(user, blog)
    )
