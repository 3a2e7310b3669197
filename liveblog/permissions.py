"""Who may write what. Every write path (HTTP, websocket, admin, commands) asks these."""

from typing import Any

from .models import Blog, Post


def can_post(user: Any, blog: Blog) -> bool:
    """Authors of the blog (its owner included) and superusers."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    if user.is_superuser or blog.owner_id == user.pk:
        return True
    return blog.authors.filter(pk=user.pk).exists()


def can_manage_blog(user: Any, blog: Blog) -> bool:
    """Title, status and authors: the owner and staff."""
    return bool(
        user and user.is_authenticated and user.is_active
        and (user.is_staff or blog.owner_id == user.pk)
    )


def can_edit_post(user: Any, blog: Blog, post: Post) -> bool:
    """A post's own author, or whoever manages the blog."""
    return post.author_id == user.pk or can_manage_blog(user, blog)
