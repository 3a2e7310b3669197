"""A shared phone, the server's side: every page says whom it was rendered for (the service
worker keeps each person's pages apart by it), a signed-in user's pages are private, the
offline page belongs to nobody, signing out empties the browser's HTTP cache, and a write that
names its user is refused unless that user is the one signed in."""

import json
import re

import pytest
from django.test import Client

from liveblog.models import Post

from .test_api import POSTS_URL, assert_error, json_post, new_post

VIEWER = "X-Liveblog-Viewer"


@pytest.mark.django_db
def test_pages_for_nobody_say_so_and_may_be_kept(client, blog):
    for url in ("/", "/liveblog/final/", "/offline/"):
        response = client.get(url)
        assert response[VIEWER] == "anonymous", url
        assert "private" not in response.get("Cache-Control", ""), url


@pytest.mark.django_db
def test_a_signed_in_users_pages_are_theirs_and_private(client, author, blog):
    client.force_login(author)
    for url in ("/", "/liveblog/final/", "/liveblog/final/write/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response[VIEWER] == str(author.pk), url
        assert "private" in response["Cache-Control"], url


@pytest.mark.django_db
def test_the_admin_is_never_stored(client, owner):
    client.force_login(owner)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


@pytest.mark.django_db
def test_api_answers_carry_no_viewer(client, author, blog):
    client.force_login(author)
    response = client.get(POSTS_URL)
    assert response.status_code == 200
    assert VIEWER not in response


@pytest.mark.django_db
def test_the_offline_page_is_rendered_for_nobody(client, author):
    """It is precached once and shown to whoever holds the phone later."""
    client.force_login(author)
    response = client.get("/offline/")
    page = response.content.decode()
    assert response[VIEWER] == "anonymous"
    assert author.username not in page
    assert "csrfmiddlewaretoken" not in page
    assert "Sign in" in page


@pytest.mark.django_db
def test_signing_out_empties_the_browsers_http_cache(client, author):
    client.force_login(author)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Clear-Site-Data"] == '"cache"'
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_signed_in_pages_carry_the_sign_out_form_and_its_dialog(client, author, blog):
    client.force_login(author)
    page = client.get("/liveblog/final/").content.decode()
    form = re.search(r'<form id="sign-out"[^>]*>', page).group(0)
    assert f'data-user-id="{author.pk}"' in form
    assert 'id="sign-out-dialog"' in page
    console = client.get("/liveblog/final/write/").content.decode()
    assert f'data-user-id="{author.pk}"' in re.search(r'<form id="compose"[^>]*>', console).group(0)


@pytest.mark.django_db
def test_a_write_naming_another_user_is_refused_and_changes_nothing(client, author, stranger,
                                                                    blog):
    client.force_login(author)
    response = json_post(client, POSTS_URL, new_post(), HTTP_X_LIVEBLOG_USER=str(stranger.pk))
    assert_error(response, 403, "wrong_user")
    assert not Post.objects.exists()
    for named in (str(author.pk), None):
        extra = {"HTTP_X_LIVEBLOG_USER": named} if named else {}
        response = json_post(client, POSTS_URL, new_post(), **extra)
        assert response.status_code == 201, response.content
    assert Post.objects.count() == 2


@pytest.mark.django_db
def test_wrong_user_is_checked_after_csrf(author, blog):
    """A forged request learns nothing about who is signed in: CSRF fails first."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(author)
    response = json_post(client, POSTS_URL, new_post(), HTTP_X_LIVEBLOG_USER="999")
    assert_error(response, 403, "csrf_failed")


def test_the_worker_keeps_no_api_answers_and_knows_where_to_sign_out(client):
    source = client.get("/sw.js").content.decode()
    assert "liveblog-api" not in source
    assert f"const SIGN_OUT_URL = {json.dumps('/accounts/logout/')};" in source
    assert "X-Liveblog-Viewer" in source


def test_favicon_leads_to_the_apps_icon(client):
    for method in (client.get, client.head):
        response = method("/favicon.ico")
        assert response.status_code == 302
        assert response["Location"].startswith("/static/pwa/favicon-32.")
