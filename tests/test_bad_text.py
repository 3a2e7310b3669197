"""Input the properties found crashing writes (tests/test_prop_*.py).

JSON nested deeper than Python's parser goes, and escaped lone surrogates, which decode to
strings that UTF-8, the database and the Markdown renderer refuse: both are `bad_json`, over
HTTP and over the websocket. Text with NUL, which PostgreSQL cannot store (a DataError, so a 500
over HTTP and `unavailable` over the websocket): `invalid` on every database. Nothing is written."""

import json
import uuid

import pytest

from liveblog import protocol, services
from liveblog.errors import Invalid
from tests.test_api import (
    BLOG_URL,
    POSTS_URL,
    assert_error,
    assert_nothing_written,
    json_patch,
    json_post,
    signed_in,
)

CLIENT_ID = str(uuid.UUID(int=7))
CRASHERS = [
    "[" * 10_000,
    '{"body": ' + "[" * 10_000 + "]" * 10_000 + "}",
    '{"client_id": "' + CLIENT_ID + '", "body": "\\ud800"}',
    '{"client_id": "' + CLIENT_ID + '", "body": "ok", "\\udfff": 1}',
]


@pytest.mark.parametrize("text", CRASHERS + [
    '{"type": "post", "client_id": "' + CLIENT_ID + '", "body": "\\ud800 goal"}',
    '{"type": "resync", "since": 0, "epoch": "\\ud800"}',
])
def test_client_frames_that_crashed_the_parser_are_bad_json(text):
    with pytest.raises(Invalid) as refused:
        protocol.parse_client_frame(text)
    assert refused.value.code == "bad_json"


def test_paired_surrogate_escapes_are_text():
    frame = '{"type": "post", "client_id": "' + CLIENT_ID + '", "body": "\\ud83c\\udfdf"}'
    assert protocol.parse_client_frame(frame).body == "\U0001f3df"


@pytest.mark.django_db
@pytest.mark.parametrize("text", CRASHERS)
def test_http_bodies_that_crashed_the_parser_are_400_bad_json(author, owner, blog, text):
    assert_error(json_post(signed_in(author), POSTS_URL, text), 400, "bad_json")
    assert_error(json_patch(signed_in(owner), BLOG_URL, text.replace("body", "title")),
                 400, "bad_json")
    assert_nothing_written(blog)
    assert json.loads(json_post(signed_in(author), POSTS_URL, {
        "client_id": CLIENT_ID, "body": "still fine",
    }).content)["seq"] == 1


@pytest.mark.django_db
def test_text_with_nul_is_refused_on_every_database(author, owner, blog, make_post):
    post_id = make_post("fine").data["id"]
    writes = [
        lambda: make_post("a\x00b"),
        lambda: services.post_update(actor=author, blog_id=blog.pk, post_id=post_id, body="\x00"),
        lambda: services.blog_update(actor=owner, blog_id=blog.pk, title="Cup\x00"),
        lambda: services.blog_update(actor=owner, blog_id=blog.pk, description="\x00"),
        lambda: services.blog_create(actor=owner, slug="other", title="T", description="\x00"),
    ]
    for write in writes:
        with pytest.raises(Invalid):
            write()
    blog.refresh_from_db()
    assert blog.head == 1


@pytest.mark.django_db
def test_http_text_with_nul_is_400(author, blog):
    response = json_post(signed_in(author), POSTS_URL, {"client_id": CLIENT_ID, "body": "a\x00"})
    assert_error(response, 400, "invalid")
    assert_nothing_written(blog)
