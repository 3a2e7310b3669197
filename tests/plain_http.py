"""A pytest plugin loaded before Django's settings (`-p tests.plain_http` in pyproject.toml):
the test client speaks plain http, so the settings must not redirect it to https or mark its
cookies Secure. conftest.py is too late: pytest-django reads the settings before it.

It also keeps the scheduler out of the pytest process itself (see `pytest_configure`)."""

import os

import pytest

os.environ.setdefault("LIVEBLOG_PLAIN_HTTP", "1")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """No scheduler thread in the pytest process (project/asgi.py would start one when a test
    imports the application): tests call services.submissions_publish_due themselves, and a
    thread publishing behind their backs would race them. The server processes tests start run
    theirs: this is the setting, not the environment, which those processes would inherit."""
    from django.conf import settings

    settings.LIVEBLOG_SCHEDULER = False
    # Nor pushes: tests that want them install a sender with a recording transport
    # (tests/test_push.py); the servers tests start send theirs.
    settings.LIVEBLOG_PUSH_SENDER = False
