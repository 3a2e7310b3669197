"""Django's SQLite backend, with the process's write transactions queued on a lock.

SQLite lets one writer at a time into a database. Every write transaction here starts with
`BEGIN IMMEDIATE` (project/settings.py), and a second writer meets SQLite's busy handler, which
does not wait for the lock to be released but sleeps and tries again: 1, 2, 5, 10, 15, 20, 25 ms
and so on. In a burst of posts (fifty in a second, issue 20) a create that came while another
held the lock slept past its release, the next one behind it longer, and the author's create
calls took a median of 90 ms for 5 ms of work.

Here the writers of one process queue on a lock before their `BEGIN IMMEDIATE`, and the next
goes in the moment the last commits or rolls back. Writers in other processes (a second `make
run` on the same file, a management command) still meet SQLite's busy timeout, as before;
PostgreSQL, which production runs, has row locks and never comes here.
"""

from __future__ import annotations

import threading

from django.db import OperationalError
from django.db.backends.sqlite3 import base

# One writer at a time in this process, as SQLite allows one at a time in the database.
_write_lock = threading.Lock()


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_write_lock = False

    def _start_transaction_under_autocommit(self) -> None:
        # As long as SQLite's own busy timeout would have let it wait.
        if not _write_lock.acquire(timeout=self.settings_dict["OPTIONS"].get("timeout", 5)):
            raise OperationalError("database is locked (another write of this process)")
        self._holds_write_lock = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_lock()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._release_write_lock()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._release_write_lock()

    def _close(self) -> None:
        try:
            super()._close()  # an open transaction ends with its connection
        finally:
            self._release_write_lock()

    def _release_write_lock(self) -> None:
        if self._holds_write_lock:
            self._holds_write_lock = False
            _write_lock.release()
