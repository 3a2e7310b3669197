"""The app's own errors. Every transport maps them to its error shape in one place:
HTTP -> JSON body with the status below (views/api.py), websocket -> `error` frame (consumers.py).
"""


class LiveblogError(Exception):
    code = "error"
    status = 400

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code


class Invalid(LiveblogError):
    code = "invalid"
    status = 400


class NotAuthenticated(LiveblogError):
    code = "not_authenticated"
    status = 401


class NotAllowed(LiveblogError):
    code = "forbidden"
    status = 403


class NotFound(LiveblogError):
    code = "not_found"
    status = 404


class Conflict(LiveblogError):
    code = "conflict"
    status = 409


class TooLarge(LiveblogError):
    code = "too_large"
    status = 413


class NotJson(LiveblogError):
    """A write that must be JSON came as something else (a form a page elsewhere could post)."""

    code = "unsupported_media_type"
    status = 415


class TooMany(LiveblogError):
    """Over a bound that is not a rate (too many push subscriptions from one address)."""

    code = "too_many_subscriptions"
    status = 429


class Unavailable(LiveblogError):
    """A dependency (the database) cannot be reached: try again shortly."""

    code = "unavailable"
    status = 503


class Unsupported(LiveblogError):
    """A request for something this server does not do (oEmbed answers only JSON)."""

    code = "not_implemented"
    status = 501
