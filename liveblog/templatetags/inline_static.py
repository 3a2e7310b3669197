"""What a page needs to paint from its first response on a slow network, where every request
costs a round trip (2 s on Slow 3G; bench `page`, README "Performance"):
`{% inline_static "liveblog/app.css" %}`, a collected static file's text (a render-blocking
stylesheet would be a second round trip before anything shows), and
`{% modulepreload "liveblog/reader.js" %}`, its whole module graph fetched at once."""

import posixpath
import re
from functools import lru_cache

from django import template
from django.contrib.staticfiles.storage import staticfiles_storage
from django.templatetags.static import static
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@lru_cache(maxsize=8)
def _text(hashed_name: str) -> str:
    with staticfiles_storage.open(hashed_name) as file:
        return file.read().decode()


@register.simple_tag
def inline_static(name: str) -> SafeString:
    """The file's content (our own stylesheet: trusted, never user input). Read once per process
    and hashed name: a deploy that changes the file changes its name, and restarts the server."""
    return mark_safe(_text(staticfiles_storage.stored_name(name)))  # noqa: S308 - our own file


# `import … from "./x.js"`, `import "./x.js"`, `export … from "./x.js"` (not `import("…")`, which
# loads on demand and must stay off the page's critical path).
STATIC_IMPORT = re.compile(r"""^\s*(?:import|export)\s[^'";]*?["'](\.{1,2}/[^"']+)["']""", re.M)


@lru_cache(maxsize=16)
def _module_graph(entry: str) -> tuple[str, ...]:
    """`entry` and every module it imports statically, directly or not (static names)."""
    found: list[str] = []
    waiting = [entry]
    while waiting:
        name = waiting.pop()
        if name in found:
            continue
        found.append(name)
        with staticfiles_storage.open(name) as file:
            source = file.read().decode()
        waiting += [posixpath.normpath(posixpath.join(posixpath.dirname(name), path))
                    for path in STATIC_IMPORT.findall(source)]
    return tuple(found)


@register.simple_tag
def modulepreload(entry: str) -> SafeString:
    """`<link rel="modulepreload">` for an entry module and all it imports: the browser fetches
    the whole graph at once instead of one level of imports per round trip (Lighthouse counts
    each level against the largest paint; on Slow 3G a level costs 2 s)."""
    return format_html_join("\n  ", '<link rel="modulepreload" href="{}">',
                            ((static(name),) for name in _module_graph(entry)))
