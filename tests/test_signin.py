"""Sign-in lockout (django-axes, project/signin.py): the site's sign-in and the admin's stop
guessing per (username, address) and per address, answer 429 with the sign-in form and a message,
and forget after the cool-off."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F

pytestmark = pytest.mark.django_db

SITE, ADMIN = "/accounts/login/", "/admin/login/"
LOCKED = "Too many failed sign-ins. Try again in 15 minutes."


def sign_in(client, path, username, password, address="10.0.0.1"):
    return client.post(path, {"username": username, "password": password, "next": "/"},
                       REMOTE_ADDR=address)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("path", [SITE, ADMIN])
def test_thirty_wrong_passwords_then_the_right_one_does_not_sign_in(client, owner, path):
    statuses = [sign_in(client, path, "olivia", f"guess-{n}").status_code for n in range(30)]
    assert statuses[:4] == [200] * 4  # the form again, "wrong password"
    assert set(statuses[4:]) == {429}  # the fifth failure locks
    response = sign_in(client, path, "olivia", "olivia-password")
    assert response.status_code == 429
    assert not signed_in(client)


@pytest.mark.parametrize("path", [SITE, ADMIN])
def test_the_lockout_is_the_sign_in_form_with_a_message(client, owner, path):
    for n in range(5):
        response = sign_in(client, path, "olivia", f"guess-{n}")
    assert response.status_code == 429
    page = response.content.decode()
    assert LOCKED in page
    assert 'name="password"' in page and 'name="csrfmiddlewaretoken"' in page


def test_the_right_user_from_another_address_is_not_locked(client, author):
    for n in range(10):
        sign_in(client, SITE, "alice", f"guess-{n}", address="198.51.100.1")
    assert sign_in(client, SITE, "alice", "alice-password", "198.51.100.1").status_code == 429
    response = sign_in(client, SITE, "alice", "alice-password", address="203.0.113.2")
    assert response.status_code == 302
    assert signed_in(client)


def test_another_user_from_the_same_address_is_not_locked_by_a_pair_lock(client, author, owner):
    for n in range(5):
        sign_in(client, SITE, "olivia", f"guess-{n}")
    assert sign_in(client, SITE, "alice", "alice-password").status_code == 302


def test_an_address_trying_many_usernames_is_locked_for_everyone(client, author, settings):
    settings.LIVEBLOG_SIGNIN_ADDRESS_FAILURES = 8  # the mechanism; the default is 50
    for n in range(8):  # two tries each on four names: no pair reaches 5
        sign_in(client, SITE, f"name-{n % 4}", "guess")
    response = sign_in(client, SITE, "alice", "alice-password")
    assert response.status_code == 429 and LOCKED in response.content.decode()
    elsewhere = sign_in(client, SITE, "alice", "alice-password", address="203.0.113.2")
    assert elsewhere.status_code == 302


def test_the_lock_ends_after_the_cool_off(client, author):
    for n in range(5):
        sign_in(client, SITE, "alice", f"guess-{n}")
    assert sign_in(client, SITE, "alice", "alice-password").status_code == 429
    # Every failure 14 minutes old: still inside the 15-minute cool-off.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=14))
    assert sign_in(client, SITE, "alice", "alice-password").status_code == 429  # and it restarts
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    response = sign_in(client, SITE, "alice", "alice-password")
    assert response.status_code == 302
    assert signed_in(client)


def test_successful_sign_ins_never_lock(client, author):
    for _ in range(12):
        assert sign_in(client, SITE, "alice", "alice-password").status_code == 302
    assert not AccessAttempt.objects.exists()


@pytest.mark.django_db(transaction=True)
async def test_the_lockout_under_asgi(async_client, author):
    """Django's ASGI handler runs axes' middleware on its async path."""
    for n in range(5):
        response = await async_client.post(SITE, {"username": "alice", "password": f"x{n}"})
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    response = await async_client.post(SITE, {"username": "alice", "password": "alice-password"})
    assert response.status_code == 429
