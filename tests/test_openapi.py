"""The OpenAPI document (liveblog/openapi.py): valid OpenAPI 3.1, served at /api/openapi.json,
complete (every /api/ route and method, every error code), and true: Schemathesis sends
generated requests — valid and invalid — to a real daphne, anonymous and as a signed-in author,
and every answer must be below 500 and match the document (status, content type, headers,
body). `LIVEBLOG_FUZZ=1` (`make fuzz`) runs many more examples per operation.
"""

import copy
import io
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import schemathesis
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from PIL import Image

from devstack.daphne import DaphneServer, Site
from devstack.postgres import postgres_server
from liveblog import openapi
from liveblog.errors import LiveblogError

FUZZ = os.environ.get("LIVEBLOG_FUZZ") == "1"
MAX_EXAMPLES = 1000 if FUZZ else 25
# The server under test must not refuse the fuzzer for its own good: generous API throttles
# (liveblog/throttle.py), or a fuzzing run becomes a run of 429s.
GENEROUS = "1000000/60"
SERVER_ENV = {
    "LIVEBLOG_THROTTLE_WRITES": GENEROUS,
    "LIVEBLOG_THROTTLE_ANON_READS": GENEROUS,
    "LIVEBLOG_THROTTLE_USER_READS": GENEROUS,
    "LIVEBLOG_THROTTLE_PUSH": GENEROUS,
}

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]
CONFIG = schemathesis.Config.from_dict({
    "generation": {
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,  # the same examples every run, so a failure reproduces
        # The session and CSRF token come from a real sign-in, not from the generator.
        "with-security-parameters": False,
    },
})
schema = schemathesis.openapi.from_dict(copy.deepcopy(openapi.document()), config=CONFIG)
REPO = Path(__file__).resolve().parents[1]


# --- The document -----------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1():
    validate(openapi.document())
    assert openapi.document()["openapi"].startswith("3.1.")


def _api_routes() -> dict[str, set[str]]:
    """Every URL pattern under /api/, in OpenAPI's path syntax, with the methods it allows."""
    found: dict[str, set[str]] = {}

    def walk(patterns: list, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/"):
                path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
                found[path] = {method.lower() for method in pattern.callback.allowed_methods}

    walk(get_resolver().url_patterns, "")
    return found


def test_every_api_route_and_method_is_documented():
    routes = _api_routes()
    assert "/api/liveblog/{slug}/posts/{post_id}" in routes  # the walk finds the API at all
    documented = {path: set(item) for path, item in openapi.document()["paths"].items()}
    assert documented == {path: methods - {"head"} for path, methods in routes.items()}


def test_every_error_code_the_code_can_answer_is_in_the_document():
    """Codes from the error classes and every literal `code=` / `error_response` in the app."""
    codes = {cls.code for cls in _subclasses(LiveblogError)}
    for source in (REPO / "liveblog").rglob("*.py"):
        text = source.read_text()
        codes |= set(re.findall(r'code="(\w+)"', text))
        codes |= set(re.findall(r'error_response\(\s*\d+,\s*"(\w+)"', text))
    codes -= {"error", "unknown_type"}  # the base class's placeholder; a websocket-only code
    assert codes <= set(openapi.ERROR_CODES), codes - set(openapi.ERROR_CODES)


def _subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *_subclasses(direct)}}


@pytest.mark.django_db
def test_the_document_is_served_as_cacheable_json(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "public" in response["Cache-Control"] and "max-age=" in response["Cache-Control"]
    assert json.loads(response.content) == openapi.document()


# --- Schemathesis against a real daphne -------------------------------------------------------


@dataclass
class Identity:
    name: str
    session: requests.Session
    headers: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    """On PostgreSQL, as in production: it refuses data SQLite takes (NUL characters)."""
    with postgres_server(database="liveblog") as database:
        yield Site.create(tmp_path_factory.mktemp("openapi"), DATABASE_URL=database.url)


@pytest.fixture(scope="module")
def server(site) -> Iterator[DaphneServer]:
    server = DaphneServer(site, **SERVER_ENV).start()
    try:
        yield server
    finally:
        server.stop()


def _signed_in(server: DaphneServer, username: str, password: str) -> Identity:
    """A browser's session: the login form's CSRF cookie, then the session cookie."""
    session = requests.Session()
    session.get(f"{server.url}/accounts/login/", timeout=10).raise_for_status()
    session.post(f"{server.url}/accounts/login/", timeout=10, data={
        "username": username, "password": password,
        "csrfmiddlewaretoken": session.cookies["csrftoken"],
    }).raise_for_status()
    assert "sessionid" in session.cookies, "could not sign in"
    return Identity("author", session, {"X-CSRFToken": session.cookies["csrftoken"]})


@pytest.fixture(scope="module")
def seeded(server, site) -> dict[str, Identity]:
    """A few posts (one with a photo, one pinned) so answers carry real objects, and both
    identities the fuzzer speaks as."""
    author = _signed_in(server, site.username, site.password)
    posts = f"{server.url}/api/liveblog/{site.slug}/posts"
    for number in range(5):
        answer = author.session.post(posts, headers=author.headers, timeout=10, json={
            "client_id": str(uuid.uuid4()), "body": f"Update **{number}**",
            "pinned": number == 0, "key_event": number == 1,
        })
        assert answer.status_code == 201, answer.text
    image = io.BytesIO()
    Image.new("RGB", (400, 300), "teal").save(image, "PNG")
    answer = author.session.post(posts, headers=author.headers, timeout=30, data={
        "client_id": str(uuid.uuid4()), "body": "", "photo_alt": "A teal square",
    }, files={"photo": ("square.png", image.getvalue(), "image/png")})
    assert answer.status_code == 201, answer.text
    contributor = _desk_seeded(server, site, author)
    return {"anonymous": Identity("anonymous", requests.Session(), {}), "author": author,
            "contributor": contributor}


CONTRIBUTOR = ("stringer", "stringer-password-9")


def _in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


def _desk_seeded(server: DaphneServer, site: Site, owner: Identity) -> Identity:
    """A contributor (made by liveblog_demo as the owner of a blog of their own, then given
    the role on the fuzzed blog) and their submissions: waiting, returned, scheduled, one with
    a photo, so the desk's answers carry real objects."""
    username, password = CONTRIBUTOR
    site.manage("liveblog_demo", "--username", username, "--password", password,
                "--slug", "stringer-desk", "--title", "Stringer's own")
    base = f"{server.url}/api/liveblog/{site.slug}"
    answer = owner.session.put(f"{base}/members/{username}", headers=owner.headers, timeout=10,
                               json={"role": "contributor"})
    assert answer.status_code == 200, answer.text
    contributor = _signed_in(server, username, password)
    ids = []
    for number in range(4):
        answer = contributor.session.post(f"{base}/posts", headers=contributor.headers,
                                          timeout=10, json={"client_id": str(uuid.uuid4()),
                                                            "body": f"Desk **{number}**"})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["post"]["id"])
    answer = owner.session.post(f"{base}/submissions/{ids[1]}/return", headers=owner.headers,
                                timeout=10, json={"note": "Which minute?"})
    assert answer.status_code == 200, answer.text
    answer = owner.session.post(f"{base}/submissions/{ids[2]}/publish", headers=owner.headers,
                                timeout=10, json={"publish_at": _in_an_hour()})
    assert answer.status_code == 202, answer.text
    return Identity("contributor", contributor.session, contributor.headers)


@pytest.fixture(params=["anonymous", "author", "contributor"])
def identity(request, seeded) -> Identity:
    return seeded[request.param]


def _aim(case: schemathesis.Case, slug: str) -> None:
    """Most generated requests go to the seeded blog and its first posts, so they reach past
    the 404s into the views; the rest keep their random slug and id."""
    params = case.path_parameters or {}
    if "slug" in params and len(str(params["slug"])) % 4:
        params["slug"] = slug
    for name in ("post_id", "submission_id"):
        number = params.get(name)
        if isinstance(number, int) and not isinstance(number, bool) and number % 4:
            params[name] = 1 + number % 8
    if "username" in params and len(str(params["username"])) % 3:
        params["username"] = CONTRIBUTOR[0]


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          max_examples=MAX_EXAMPLES)
@pytest.mark.server
def test_every_answer_matches_the_document(case, server, site, identity):
    _aim(case, site.slug)
    response = case.call(base_url=server.url, session=identity.session,
                         headers=identity.headers, timeout=30)
    checks = CHECKS
    if response.status_code == 501:
        # oEmbed asks for 501 on a format the provider lacks (documented); nothing else has it.
        assert case.path == "/api/oembed", response.text
        assert (case.query or {}).get("format") not in (None, "", "json"), response.text
        checks = [check for check in CHECKS if check is not schemathesis.checks.not_a_server_error]
    case.validate_response(response, checks=checks)


@pytest.mark.server
@pytest.mark.parametrize("who", ["anonymous", "author"])
def test_a_malformed_multipart_body_is_answered_by_django_in_json(server, site, seeded, who):
    """daphne's Twisted would answer it with a bare 400 of its own (project/handshakes.py);
    found by this fuzzing."""
    identity = seeded[who]
    response = identity.session.post(
        f"{server.url}/api/liveblog/{site.slug}/posts", timeout=10,
        headers={**identity.headers, "Content-Type": "multipart/form-data; boundary=edge"},
        data=b"--edge--\r\n",
    )
    assert response.headers["Content-Type"] == "application/json"
    assert (response.status_code, response.json()["error"]) == (
        (400, "invalid") if who == "author" else (401, "not_authenticated"))  # no client_id


@pytest.mark.server
def test_a_throttled_answer_matches_the_document(site, seeded):
    """The fuzzed server has generous throttles; here one that allows two reads a minute."""
    server = DaphneServer(site, LIVEBLOG_THROTTLE_ANON_READS="2/60").start()
    try:
        operation = schema["/api/liveblog/{slug}/"]["GET"]
        case = operation.Case(path_parameters={"slug": site.slug})
        answers = [case.call(base_url=server.url, timeout=10) for _ in range(3)]
    finally:
        server.stop()
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert int(answers[2].headers["retry-after"][0]) > 0
    case.validate_response(answers[2], checks=CHECKS)


# --- The desk's answers, one by one -------------------------------------------------------------


def _checked(identity: Identity, server: DaphneServer, path: str, method: str,
             status: int, **case: object) -> dict | None:
    """Call one operation as `identity`, check its status and that the answer matches the
    document."""
    operation = schema[path][method]
    made = operation.Case(**case)
    response = made.call(base_url=server.url, session=identity.session,
                         headers=identity.headers, timeout=30)
    assert response.status_code == status, response.text
    made.validate_response(response, checks=CHECKS)
    return response.json() if response.content else None


def _a_contributor_again(owner: Identity, server: DaphneServer, site: Site) -> None:
    """The fuzzer may have removed the contributor, or made them an editor."""
    answer = owner.session.put(f"{server.url}/api/liveblog/{site.slug}/members/{CONTRIBUTOR[0]}",
                               headers=owner.headers, timeout=10, json={"role": "contributor"})
    assert answer.status_code == 200, answer.text


@pytest.mark.server
def test_the_desks_answers_match_the_document(server, site, seeded):
    """Every desk endpoint's answer, 202s and a 204 included, as the document describes it."""
    owner, contributor = seeded["author"], seeded["contributor"]
    slug = {"slug": site.slug}
    _a_contributor_again(owner, server, site)
    created = _checked(contributor, server, "/api/liveblog/{slug}/posts", "POST", 202,
                       path_parameters=slug, media_type="application/json",
                       body={"client_id": str(uuid.uuid4()), "body": "For the desk"})
    one = {**slug, "submission_id": created["post"]["id"]}
    assert created["seq"] is None and created["post"]["state"] == "submitted"
    for who in (owner, contributor):
        _checked(who, server, "/api/liveblog/{slug}/desk", "GET", 200, path_parameters=slug)
        _checked(who, server, "/api/liveblog/{slug}/submissions/{submission_id}", "GET", 200,
                 path_parameters=one)
    _checked(contributor, server, "/api/liveblog/{slug}/submissions/{submission_id}", "PATCH",
             200, path_parameters=one, media_type="application/json", body={"body": "Revised"})
    _checked(owner, server, "/api/liveblog/{slug}/posts/{submission_id}/return", "POST", 200,
             path_parameters=one, media_type="application/json", body={"note": "Source?"})
    _checked(owner, server, "/api/liveblog/{slug}/submissions/{submission_id}/return", "POST",
             409, path_parameters=one, media_type="application/json", body={"note": "Again"})
    published = _checked(owner, server, "/api/liveblog/{slug}/posts/{submission_id}/publish",
                         "POST", 200, path_parameters=one, media_type="application/json",
                         body={"key_event": True})
    assert published["seq"] >= 1 and published["post"]["key_event"] is True
    _checked(contributor, server, "/api/liveblog/{slug}/submissions/{submission_id}", "DELETE",
             409, path_parameters=one)
    _checked(owner, server, "/api/liveblog/{slug}/members", "GET", 200, path_parameters=slug)
    _checked(contributor, server, "/api/liveblog/{slug}/members", "GET", 403,
             path_parameters=slug)
    member = {**slug, "username": CONTRIBUTOR[0]}
    _checked(owner, server, "/api/liveblog/{slug}/members/{username}", "PUT", 200,
             path_parameters=member, media_type="application/json", body={"role": "contributor"})
    _checked(owner, server, "/api/liveblog/{slug}/members/{username}", "PUT", 404,
             path_parameters={**slug, "username": "nobody-here"},
             media_type="application/json", body={"role": "editor"})


@pytest.mark.server
def test_the_desks_scheduling_and_removal_answers_match_the_document(server, site, seeded):
    owner, contributor = seeded["author"], seeded["contributor"]
    slug = {"slug": site.slug}
    _a_contributor_again(owner, server, site)
    created = _checked(owner, server, "/api/liveblog/{slug}/posts", "POST", 202,
                       path_parameters=slug, media_type="application/json",
                       body={"client_id": str(uuid.uuid4()), "body": "Later",
                             "publish_at": _in_an_hour()})
    assert created["post"]["state"] == "scheduled"
    _checked(owner, server, "/api/liveblog/{slug}/submissions/{submission_id}", "DELETE", 200,
             path_parameters={**slug, "submission_id": created["post"]["id"]})
    waiting = _checked(contributor, server, "/api/liveblog/{slug}/posts", "POST", 202,
                       path_parameters=slug, media_type="application/json",
                       body={"client_id": str(uuid.uuid4()), "body": "Soon"})
    scheduled = _checked(
        owner, server, "/api/liveblog/{slug}/submissions/{submission_id}/publish", "POST", 202,
        path_parameters={**slug, "submission_id": waiting["post"]["id"]},
        media_type="application/json", body={"publish_at": _in_an_hour()})
    assert scheduled["seq"] is None and scheduled["post"]["state"] == "scheduled"
    member = {**slug, "username": CONTRIBUTOR[0]}
    _checked(owner, server, "/api/liveblog/{slug}/members/{username}", "DELETE", 204,
             path_parameters=member)
    _checked(contributor, server, "/api/liveblog/{slug}/desk", "GET", 403, path_parameters=slug)
    _checked(owner, server, "/api/liveblog/{slug}/members/{username}", "PUT", 200,
             path_parameters=member, media_type="application/json", body={"role": "contributor"})
