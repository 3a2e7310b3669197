"""API throttles (liveblog/throttle.py): writes per signed-in user, reads per signed-in user,
anything anonymous per client address; over a limit, 429 `rate_limited` with Retry-After."""

import json
import uuid

import pytest
from django.test import Client

from liveblog import throttle
from liveblog.throttle import Rate, charge

pytestmark = pytest.mark.django_db

BLOG_URL = "/api/liveblog/final/"
POSTS_URL = BLOG_URL + "posts"
# 40 s into a 60 s window (and into a 3600 s one): Retry-After is then exactly predictable.
NOW = 1_800_000_000 + 40


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(throttle, "clock", lambda: NOW)


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def write(client):
    return client.post(POSTS_URL, data=json.dumps({"client_id": str(uuid.uuid4()), "body": "Hi"}),
                       content_type="application/json")


def assert_rate_limited(response, retry_after):
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == str(retry_after)
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == "rate_limited"
    assert body["detail"]


def test_a_window_counts_costs_and_says_when_it_ends(monkeypatch):
    rate = Rate.parse("5/60")
    assert [charge("unit", "k", rate, cost) for cost in (2, 3)] == [0, 0]
    assert charge("unit", "k", rate) == 20  # NOW is 40 s into its minute
    assert charge("unit", "other", rate, 5) == 0  # keys are counted apart
    monkeypatch.setattr(throttle, "clock", lambda: NOW + 20)  # the next window
    assert charge("unit", "k", rate, 5) == 0


def test_rates_parse_and_refuse_nonsense():
    assert Rate.parse("60/60") == Rate(60, 60)
    assert Rate.parse("10") == Rate(10, 60)
    for bad in ("0/60", "5/0", "x/60"):
        with pytest.raises(ValueError):
            Rate.parse(bad)


def test_anonymous_reads_are_limited_per_address(client, blog, settings):
    settings.LIVEBLOG_THROTTLE_ANON_READS = "3/60"
    assert [client.get(BLOG_URL, REMOTE_ADDR="10.0.0.1").status_code for _ in range(3)] == [200] * 3
    assert_rate_limited(client.get(POSTS_URL, REMOTE_ADDR="10.0.0.1"), 20)
    assert client.get(BLOG_URL, REMOTE_ADDR="10.0.0.2").status_code == 200


def test_a_large_events_read_costs_more(client, blog, settings):
    settings.LIVEBLOG_THROTTLE_ANON_READS = "40/60"
    big = BLOG_URL + "events?since=0&limit=1000"  # 20 units
    assert [client.get(big).status_code for _ in range(2)] == [200, 200]
    assert_rate_limited(client.get(BLOG_URL + "events?since=0&limit=50"), 20)


def test_writes_are_limited_per_user(blog, author, owner, settings):
    settings.LIVEBLOG_THROTTLE_WRITES = "3/60"
    alice, olivia = signed_in(author), signed_in(owner)
    assert [write(alice).status_code for _ in range(3)] == [201] * 3
    assert_rate_limited(write(alice), 20)
    assert write(olivia).status_code == 201  # another author, same address
    assert alice.get(BLOG_URL).status_code == 200  # reads are a bucket of their own


def test_signed_in_reads_are_per_user_not_per_address(blog, author, owner, settings):
    settings.LIVEBLOG_THROTTLE_USER_READS = "2/60"
    settings.LIVEBLOG_THROTTLE_ANON_READS = "1000/60"
    alice = signed_in(author)
    assert [alice.get(BLOG_URL).status_code for _ in range(2)] == [200, 200]
    assert_rate_limited(alice.get(BLOG_URL), 20)
    assert signed_in(owner).get(BLOG_URL).status_code == 200
    assert Client().get(BLOG_URL).status_code == 200  # a reader on the same address


def test_an_unreachable_cache_lets_requests_through(client, blog, settings, monkeypatch):
    settings.LIVEBLOG_THROTTLE_ANON_READS = "1/60"

    def down(*_args):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(throttle, "_add_or_incr", down)
    assert [client.get(BLOG_URL).status_code for _ in range(3)] == [200] * 3


def test_the_defaults_are_on():
    from django.conf import settings

    rates = [settings.LIVEBLOG_THROTTLE_WRITES, settings.LIVEBLOG_THROTTLE_ANON_READS,
             settings.LIVEBLOG_THROTTLE_USER_READS]
    assert [Rate.parse(rate) for rate in rates] == [Rate(60, 60), Rate(600, 60), Rate(1200, 60)]
