"""`liveblog_demo` (liveblog/demo.py): a published password on loopback only; the demo account
is an author of the demo blog, never staff or superuser."""

import io
import re

import pytest
from django.core.management import call_command

from liveblog import permissions
from liveblog.demo import PUBLISHED_PASSWORD, is_loopback
from liveblog.models import Blog

LOOPBACK = ["http://127.0.0.1:8000", "http://127.5.6.7:8000", "http://[::1]:8000",
            "http://localhost:8000", "http://LOCALHOST:9000"]
NOT_LOOPBACK = ["http://0.0.0.0:8000", "http://[::]:8000", "http://192.168.1.20:8000",
                "http://10.0.0.5", "http://live.example.com", "http://[fe80::1]:8000"]


@pytest.fixture(autouse=True)
def fast_hashing_and_no_password_env(settings, monkeypatch):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.delenv("LIVEBLOG_DEMO_PASSWORD", raising=False)


def demo(url: str, *args: str) -> str:
    out = io.StringIO()
    call_command("liveblog_demo", "--url", url, *args, stdout=out)
    return out.getvalue()


def shown_password(out: str) -> str:
    return re.search(r"Demo login +demo / (\S+)", out).group(1)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "::1", "[::1]", "localhost",
                                  "app.localhost", "::ffff:127.0.0.1"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "fe80::1",
                                  "live.example.com", "localhost.example.com", ""])
def test_other_hosts_are_not_loopback(host):
    assert not is_loopback(host)


@pytest.mark.django_db
@pytest.mark.parametrize("url", LOOPBACK)
def test_on_loopback_the_demo_login_is_the_published_one(django_user_model, url):
    out = demo(url)
    user = django_user_model.objects.get(username="demo")
    assert user.check_password(PUBLISHED_PASSWORD)
    assert f"demo / {PUBLISHED_PASSWORD}" in out


@pytest.mark.django_db
@pytest.mark.parametrize("url", NOT_LOOPBACK)
def test_elsewhere_the_demo_password_is_random_and_shown_once(django_user_model, url):
    out = demo(url)
    user = django_user_model.objects.get(username="demo")
    password = shown_password(out)
    assert password != PUBLISHED_PASSWORD and len(password) >= 16
    assert user.check_password(password) and not user.check_password(PUBLISHED_PASSWORD)
    again = demo(url)
    assert password not in again and "unchanged" in again
    assert django_user_model.objects.get(username="demo").check_password(password)


@pytest.mark.django_db
def test_a_published_password_from_a_loopback_run_is_replaced_elsewhere(django_user_model):
    demo("http://127.0.0.1:8000")
    out = demo("http://0.0.0.0:8000")
    user = django_user_model.objects.get(username="demo")
    assert not user.check_password(PUBLISHED_PASSWORD)
    assert user.check_password(shown_password(out))


@pytest.mark.django_db
def test_back_on_loopback_a_random_password_is_kept(django_user_model):
    password = shown_password(demo("http://192.168.1.20:8000"))
    out = demo("http://127.0.0.1:8000")
    assert django_user_model.objects.get(username="demo").check_password(password)
    assert PUBLISHED_PASSWORD not in out and "unchanged" in out


@pytest.mark.django_db
def test_the_published_password_is_refused_elsewhere_even_when_asked_for(django_user_model):
    out = demo("http://0.0.0.0:8000", "--password", PUBLISHED_PASSWORD)
    assert not django_user_model.objects.get(username="demo").check_password(PUBLISHED_PASSWORD)
    assert PUBLISHED_PASSWORD not in out


@pytest.mark.django_db
def test_an_operators_own_password_is_used_anywhere(django_user_model, monkeypatch):
    monkeypatch.setenv("LIVEBLOG_DEMO_PASSWORD", "our-own-long-password")
    out = demo("http://0.0.0.0:8000")
    assert django_user_model.objects.get(username="demo").check_password("our-own-long-password")
    assert "demo / our-own-long-password" in out


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://0.0.0.0:8000"])
def test_the_demo_account_is_an_author_of_the_demo_blog_only(django_user_model, owner, url):
    demo(url)
    user = django_user_model.objects.get(username="demo")
    assert not user.is_staff and not user.is_superuser
    blog = Blog.objects.get(slug="demo")
    assert user in blog.authors.all() and blog.owner == user
    assert permissions.can_post(user, blog)
    other = Blog.objects.create(slug="other", title="Other", owner=owner)
    assert not permissions.can_post(user, other)
    assert not permissions.can_manage_blog(user, other)


@pytest.mark.django_db
def test_an_old_demo_superuser_is_demoted(django_user_model):
    old = django_user_model.objects.create_superuser(
        "demo", password=PUBLISHED_PASSWORD, first_name="Demo", last_name="Author")
    demo("http://127.0.0.1:8000")
    old.refresh_from_db()
    assert not old.is_staff and not old.is_superuser
    assert old.check_password(PUBLISHED_PASSWORD)  # on loopback it may keep it


@pytest.mark.django_db
def test_someone_elses_admin_account_keeps_its_rights(django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="root-own-password")
    out = demo("http://127.0.0.1:8000", "--username", "root")
    admin.refresh_from_db()
    assert admin.is_superuser and admin.check_password("root-own-password")
    assert "root / (unchanged" in out


@pytest.mark.django_db
def test_an_existing_blog_gains_the_demo_author(django_user_model, owner):
    blog = Blog.objects.create(slug="demo", title="Ours", owner=owner)
    demo("http://127.0.0.1:8000")
    assert blog.authors.filter(username="demo").exists()
    blog.refresh_from_db()
    assert blog.owner == owner and blog.title == "Ours"


@pytest.mark.django_db
def test_the_demo_contributor_submits_to_the_desk(django_user_model):
    out = demo("http://127.0.0.1:8000")
    assert f"reporter / {PUBLISHED_PASSWORD}" in out
    reporter = django_user_model.objects.get(username="reporter")
    blog = Blog.objects.get(slug="demo")
    assert permissions.role_of(reporter, blog) == "contributor"
    assert not reporter.is_staff and reporter.check_password(PUBLISHED_PASSWORD)
    demo("http://127.0.0.1:8000")  # idempotent
    assert blog.memberships.filter(user=reporter).count() == 1


@pytest.mark.django_db
def test_elsewhere_the_demo_contributor_gets_its_own_random_password(django_user_model):
    out = demo("http://192.168.1.20:8000")
    password = re.search(r"Contributor +reporter / (\S+)", out).group(1)
    assert password not in (PUBLISHED_PASSWORD, shown_password(out)) and len(password) >= 16
    assert django_user_model.objects.get(username="reporter").check_password(password)


@pytest.mark.django_db
def test_no_demo_contributor_when_not_asked_for(django_user_model):
    out = demo("http://127.0.0.1:8000", "--contributor", "")
    assert "Contributor" not in out
    assert not django_user_model.objects.filter(username="reporter").exists()
