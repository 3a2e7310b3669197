"""The sign-in lockout and the API throttles through real daphne processes: the address they
count is the forwarded one only when the peer is a trusted proxy, and with REDIS_URL a throttle
holds across processes."""

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from devstack.daphne import DaphneServer, Site, daphne_processes
from devstack.redis import redis_server

pytestmark = pytest.mark.server


def sign_in(base_url: str, username: str, password: str, forwarded: str | None = None):
    """(status, signed in?) of one browser-like sign-in, optionally with X-Forwarded-For; a
    success is the home page it redirects to."""
    cookies = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
    opener.open(f"{base_url}/accounts/login/", timeout=10).read()
    token = next(cookie.value for cookie in cookies if cookie.name == "csrftoken")
    form = urllib.parse.urlencode({
        "username": username, "password": password, "csrfmiddlewaretoken": token,
    }).encode()
    request = urllib.request.Request(f"{base_url}/accounts/login/", data=form)
    if forwarded:
        request.add_header("X-Forwarded-For", forwarded)
    try:
        with opener.open(request, timeout=10) as response:
            status, page = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, page = error.code, error.read().decode()
    if status == 429:
        assert "Too many failed sign-ins" in page
    return status, any(cookie.name == "sessionid" for cookie in cookies)


def get(url: str, forwarded: str | None = None) -> tuple[int, dict, str | None]:
    request = urllib.request.Request(url)
    if forwarded:
        request.add_header("X-Forwarded-For", forwarded)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), response.headers["Retry-After"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers["Retry-After"]


def test_the_lockout_counts_the_forwarded_address_only_from_a_trusted_proxy(tmp_path):
    site = Site.create(tmp_path)
    behind_proxy = DaphneServer(site, LIVEBLOG_TRUSTED_PROXIES="127.0.0.1")
    direct = DaphneServer(site)  # the same database, nobody trusted
    try:
        behind_proxy.start()
        direct.start()
        user, password = site.username, site.password
        for n in range(5):
            sign_in(behind_proxy.url, user, f"guess-{n}", forwarded="203.0.113.7")
        # The attacker's address is locked; the reporter behind the same proxy is not.
        assert sign_in(behind_proxy.url, user, password, "203.0.113.7") == (429, False)
        assert sign_in(behind_proxy.url, user, password, "198.51.100.4") == (200, True)
        # Straight to daphne the header is a lie that changes nothing: the peer is 127.0.0.1,
        # which is not locked, and forged addresses do not spread the guesses.
        assert sign_in(direct.url, user, password, "203.0.113.7") == (200, True)
        for n in range(5):
            sign_in(direct.url, user, f"guess-{n}", forwarded=f"192.0.2.{n}")
        assert sign_in(direct.url, user, password, "192.0.2.99") == (429, False)
    finally:
        behind_proxy.stop()
        direct.stop()


def test_a_throttle_holds_across_processes_with_redis(tmp_path):
    with redis_server(tmp_path) as redis:
        # A day-long window: the test cannot straddle two windows in practice.
        site = Site.create(tmp_path, REDIS_URL=redis.url)
        env = {"LIVEBLOG_THROTTLE_ANON_READS": "4/86400", "LIVEBLOG_TRUSTED_PROXIES": "127.0.0.1"}
        with daphne_processes(site, **env) as (first, second):
            path = f"/api/liveblog/{site.slug}/"
            answers = [get(server.url + path, "203.0.113.7")
                       for server in (first, second, first, second)]
            assert [status for status, _, _ in answers] == [200] * 4
            status, body, retry_after = get(second.url + path, "203.0.113.7")
            assert (status, body["error"]) == (429, "rate_limited")
            assert 0 < int(retry_after) <= 86400
            assert get(first.url + path, "203.0.113.7")[0] == 429
            assert get(first.url + path, "198.51.100.4")[0] == 200  # another reader's address
