"""The translation catalogs (locale/<lang>/LC_MESSAGES/django.po and djangojs.po): brought up to
date with the code (makemessages), checked, and compiled (compilemessages). `make test` runs it
before the tests, `make run` compiles only (README, "In your language")."""

import contextlib
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

# English is the source language: its strings are the msgids, and it has no catalog.
TRANSLATED = ("es", "de", "ar")
DOMAINS = ("django", "djangojs")
# Not the app: the virtualenv, tools, tests, the collected copies of static files and the
# vendored Markdown library (whose minified code has calls makemessages would take for ours).
IGNORED = [".venv", "node_modules", "var", "bench", "devstack", "e2e", "tests", "media",
           "static/liveblog/vendor", "scripts"]


def catalog_paths() -> list[Path]:
    return [Path(settings.LOCALE_PATHS[0]) / language / "LC_MESSAGES" / f"{domain}.po"
            for language in TRANSLATED for domain in DOMAINS]


def _without_date(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "POT-Creation-Date" not in line)


def make_messages() -> dict[Path, tuple[set[str], set[str]]]:
    """Run makemessages for every language and domain; a catalog whose only change is the
    extraction date is left as it was (no churn in git). Returns, per catalog, the msgids it
    gained and lost."""
    import polib  # a dev requirement: `make run` only compiles
    before = {path: path.read_text(encoding="utf-8") if path.exists() else ""
              for path in catalog_paths()}
    with contextlib.chdir(settings.BASE_DIR):  # makemessages reads the tree from "."
        for domain in DOMAINS:
            call_command("makemessages", locale=list(TRANSLATED), domain=domain, no_location=True,
                         no_obsolete=True, ignore_patterns=IGNORED, verbosity=0)
    changes = {}
    for path, old in before.items():
        new = path.read_text(encoding="utf-8")
        if _without_date(new) == _without_date(old):
            path.write_text(old, encoding="utf-8")
        old_ids = {entry.msgid for entry in polib.pofile(old)} if old else set()
        new_ids = {entry.msgid for entry in polib.pofile(new)}
        changes[path] = (new_ids - old_ids, old_ids - new_ids)
    return changes


def problems(path: Path) -> list[str]:
    """What is not fully translated in one catalog: untranslated or fuzzy entries, and a fuzzy
    or missing header."""
    import polib
    catalog = polib.pofile(str(path))
    found = [f"{path}: fuzzy: {entry.msgid!r}" for entry in catalog.fuzzy_entries()]
    found += [f"{path}: untranslated: {entry.msgid!r}" for entry in catalog.untranslated_entries()]
    if catalog.metadata_is_fuzzy or not catalog.metadata.get("Plural-Forms"):
        found.append(f"{path}: the header is fuzzy or has no Plural-Forms")
    return found


class Command(BaseCommand):
    help = ("Bring the translation catalogs up to date with the code (makemessages) and compile "
            "them (compilemessages). --check: also fail on any untranslated or fuzzy string. "
            "--compile-only: only compile (what `make run` needs).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--check", action="store_true")
        parser.add_argument("--compile-only", action="store_true")

    def handle(self, *args, **options) -> None:
        if not options["compile_only"]:
            for path, (added, removed) in make_messages().items():
                for msgid in sorted(added):
                    self.stdout.write(f"{path}: new: {msgid!r}")
                for msgid in sorted(removed):
                    self.stdout.write(f"{path}: gone: {msgid!r}")
        if options["check"]:
            found = [problem for path in catalog_paths() for problem in problems(path)]
            if found:
                raise CommandError("\n".join(["translations missing:", *found]))
        with contextlib.chdir(settings.BASE_DIR):
            call_command("compilemessages", locale=list(TRANSLATED), ignore_patterns=IGNORED,
                         verbosity=0)
