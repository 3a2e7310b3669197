"""Reads: what a (re)connecting reader costs, and snapshots whose head and posts agree."""

import uuid

import pytest

from liveblog import selectors, services
from liveblog.errors import Invalid

pytestmark = pytest.mark.django_db


def test_a_replay_costs_two_queries(blog, make_post, django_assert_num_queries):
    for number in range(5):
        make_post(f"update {number}")
    with django_assert_num_queries(2):  # the blog row (with its head), then the events
        page = selectors.events_page(blog.pk, since=2, epoch=blog.epoch, limit=100)
    assert isinstance(page, selectors.EventsPage) and page.head == 5 and len(page.frames) == 3


def test_a_snapshot_costs_five_queries(blog, make_post, django_assert_num_queries):
    for number in range(5):
        make_post(f"update {number}", pinned=number == 0)
    # blog row to decide; blog row again, the page, the pinned posts, the head to confirm
    with django_assert_num_queries(5):
        page = selectors.events_page(blog.pk, since=9, epoch=None, limit=100)  # beyond the head
    assert isinstance(page, selectors.PostsPage) and page.head == 5
    assert [post["body"] for post in page.posts][:1] == ["update 4"]


def test_a_snapshot_never_mixes_states_across_a_concurrent_write(blog, author, monkeypatch):
    """A post committed between reading the head and the posts forces a re-read, so the
    snapshot's head always matches its posts."""
    services.post_create(actor=author, blog_id=blog.pk, client_id=uuid.uuid4(), body="first")
    real_page = selectors._page
    interfered = []

    def page_with_a_write_in_between(*args, **kwargs):
        if not interfered:
            interfered.append(True)
            services.post_create(
                actor=author, blog_id=blog.pk, client_id=uuid.uuid4(), body="racer"
            )
        return real_page(*args, **kwargs)

    monkeypatch.setattr(selectors, "_page", page_with_a_write_in_between)
    page = selectors.blog_snapshot(blog.pk)
    assert page.head == 2
    assert [post["body"] for post in page.posts] == ["racer", "first"]


def test_page_limits_are_enforced(blog):
    for limit in (0, selectors.POSTS_PAGE_MAX + 1):
        with pytest.raises(Invalid):
            selectors.posts_page(blog.pk, limit=limit)


def test_selectors_leave_their_arguments_alone_and_return_plain_values(blog, make_post):
    """A selector returns what it read; the caller's blog is not refreshed behind its back."""
    make_post("one")
    page = selectors.posts_page(blog.pk)
    assert page.head == 1 and page.epoch == blog.epoch
    assert blog.head == 0  # the fixture's instance, as it was made
    with pytest.raises(AttributeError):
        page.blog.head = 5  # frozen
