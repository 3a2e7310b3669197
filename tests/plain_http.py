"""A pytest plugin loaded before Django's settings (`-p tests.plain_http` in pyproject.toml):
the test client speaks plain http, so the settings must not redirect it to https or mark its
cookies Secure. conftest.py is too late: pytest-django reads the settings before it."""

import os

os.environ.setdefault("LIVEBLOG_PLAIN_HTTP", "1")
