"""Static files storage: hashed names, compressed copies, and ES module imports rewritten."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    # Browser code is plain ES modules; rewrite their `import … from "./x.js"` to hashed names
    # so that a page never mixes a new module with an old one from a cache.
    support_js_module_import_aggregation = True
    # A reference to a file that does not exist is a bug to fix, not a page to break at runtime.
    manifest_strict = True
