"""JSON that crashed the parsers before the properties found it (tests/test_prop_ws_frames.py):
nesting deeper than Python's parser goes, and escaped lone surrogates, which decode to strings
that UTF-8, the database and the Markdown renderer refuse. Both are `bad_json`, over HTTP and
over the websocket, and nothing is written."""

import json
import uuid

import pytest

from liveblog import protocol
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
