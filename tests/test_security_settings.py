"""HTTPS by default off DEBUG (redirect, Secure cookies, HSTS from the environment), plain http
only when LIVEBLOG_PLAIN_HTTP=1 says so, `check --deploy` clean with the README's production
variables, and images only from the site and the origins it names (CSP img-src)."""

import json
import os
import secrets
import subprocess
import sys

import pytest

from devstack.common import REPO

# The README's production variables ("Scale-out and deployment").
PRODUCTION = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "live.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://live.example.com",
    "LIVEBLOG_TRUSTED_PROXIES": "127.0.0.1",  # nginx on the same machine
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "LIVEBLOG_SERVE_MEDIA": "0",
}
SETTINGS = ["DEBUG", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
            "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
            "LIVEBLOG_IMAGE_ORIGINS", "CONTENT_SECURITY_POLICY"]


def clean_env(tmp_path, **env: str) -> dict[str, str]:
    """This environment without anything the settings read, plus `env`."""
    read = ("LIVEBLOG_", "SECURE_", "DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SECRET_KEY")
    base = {key: value for key, value in os.environ.items() if not key.startswith(read)}
    return {**base, "DJANGO_SETTINGS_MODULE": "project.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "SECRET_KEY": secrets.token_urlsafe(60), **env}


def run(tmp_path, args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=clean_env(tmp_path, **env),
                          capture_output=True, text=True, timeout=120)


def settings_under(tmp_path, **env: str) -> dict:
    code = ("import json, django; django.setup(); from django.conf import settings; "
            f"print(json.dumps({{name: getattr(settings, name) for name in {SETTINGS!r}}}, "
            "default=str))")  # django-csp's NONCE is an object
    result = run(tmp_path, ["-c", code], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_is_clean_with_the_production_variables(tmp_path):
    result = run(tmp_path, ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                 **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_check_deploy_warns_about_a_plain_http_site(tmp_path):
    result = run(tmp_path, ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                 **PRODUCTION, LIVEBLOG_PLAIN_HTTP="1")
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr, result.stderr


@pytest.mark.parametrize(("env", "https"), [
    ({"DEBUG": "0"}, True),
    ({}, True),  # DEBUG is off by default
    ({"DEBUG": "0", "LIVEBLOG_PLAIN_HTTP": "1"}, False),
    ({"DEBUG": "0", "LIVEBLOG_PLAIN_HTTP": "0"}, True),
    ({"DEBUG": "1"}, False),
])
def test_https_unless_plain_http_is_said(tmp_path, env, https):
    settings = settings_under(tmp_path, SECURE_HSTS_SECONDS="600", **env)
    assert settings["SECURE_SSL_REDIRECT"] is https
    assert settings["SESSION_COOKIE_SECURE"] is settings["CSRF_COOKIE_SECURE"] is https
    assert settings["SECURE_HSTS_SECONDS"] == (600 if https else 0)


def test_hsts_is_off_until_a_deployment_sets_it(tmp_path):
    settings = settings_under(tmp_path, DEBUG="0")
    assert settings["SECURE_HSTS_SECONDS"] == 0
    assert not settings["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and not settings["SECURE_HSTS_PRELOAD"]


def test_secure_cookies_still_decides_the_cookies(tmp_path):
    settings = settings_under(tmp_path, DEBUG="0", LIVEBLOG_PLAIN_HTTP="1", SECURE_COOKIES="1")
    assert settings["SESSION_COOKIE_SECURE"] and settings["CSRF_COOKIE_SECURE"]
    assert not settings["SECURE_SSL_REDIRECT"]


@pytest.mark.django_db
def test_under_plain_http_nothing_redirects_and_cookies_are_not_secure(client, author):
    """The test client (and `make run`) speak plain http: LIVEBLOG_PLAIN_HTTP=1 is set for
    pytest by tests/plain_http.py."""
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert not page.cookies["csrftoken"]["secure"]
    signed_in = client.post("/accounts/login/", {
        "username": "alice", "password": "alice-password",
        "csrfmiddlewaretoken": page.cookies["csrftoken"].value,
    })
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"
    assert not signed_in.cookies["sessionid"]["secure"]
    assert "Strict-Transport-Security" not in page.headers


# --- Images ---------------------------------------------------------------------------------


def test_images_come_from_the_site_by_default(tmp_path):
    settings = settings_under(tmp_path)
    assert settings["LIVEBLOG_IMAGE_ORIGINS"] == []
    assert settings["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]["img-src"] == ["'self'", "blob:"]


def test_image_hosts_and_an_absolute_media_url_are_allowed(tmp_path):
    settings = settings_under(
        tmp_path, LIVEBLOG_IMAGE_HOSTS="https://images.example.com, https://Pics.Example:8443",
        MEDIA_URL="https://cdn.example.net/liveblog/media/",
    )
    origins = ["https://images.example.com", "https://pics.example:8443",
               "https://cdn.example.net"]
    assert settings["LIVEBLOG_IMAGE_ORIGINS"] == origins
    assert settings["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]["img-src"] == [
        "'self'", "blob:", *origins]


@pytest.mark.parametrize("hosts", ["images.example.com", "https://images.example.com/path",
                                   "ftp://images.example.com", "*"])
def test_an_image_host_that_is_not_an_origin_is_refused(tmp_path, hosts):
    result = run(tmp_path, ["manage.py", "check"], LIVEBLOG_IMAGE_HOSTS=hosts)
    assert result.returncode != 0
    assert "LIVEBLOG_IMAGE_HOSTS" in result.stderr and "is not an origin" in result.stderr


@pytest.mark.django_db
def test_pages_allow_no_third_party_images(client, blog):
    csp = client.get(f"/liveblog/{blog.slug}/").headers["Content-Security-Policy"]
    assert "img-src 'self' blob:;" in csp + ";"
    assert "https:" not in csp and "data:" not in csp
