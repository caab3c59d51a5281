"""Access for the standalone app (`create_app`): READ_TOKEN lets a client read (dashboard and
API), ADMIN_TOKEN also lets it save and delete custom metrics and alert rules. API clients send
`Authorization: Bearer <token>`; a browser gets the standard sign-in prompt (HTTP Basic,
any user name, the token as password). Embedded in a portal, the portal's login decides
instead (`init_dashboard(protect=...)`), and these tokens are not used.
"""
from __future__ import annotations

import base64
import binascii
import functools
import hmac
from collections.abc import Callable

from flask import g, request

from dashapp.errors import error_response

REALM = 'Basic realm="Notification Analytics", charset="UTF-8"'
ADMIN_WRITES = ("/api/analytics/metrics", "/api/analytics/alerts")
READ_ONLY_POSTS = ("/api/analytics/metrics/validate", "/api/analytics/metrics/preview",
                   "/api/analytics/alerts/preview")


def presented_token() -> str:
    """The token of a Bearer header, or the password of a Basic one; "" when neither."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    return ""


def _matches(given: str, expected: str | None) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def is_admin_write(method: str, path: str) -> bool:
    """Saving or deleting a custom metric or an alert rule."""
    return path.startswith(ADMIN_WRITES) and method in ("POST", "PUT", "DELETE") and path not in READ_ONLY_POSTS


def may_write_metrics() -> bool:
    """Whether this request may save or delete custom metrics and alert rules (the Metrics
    and Alerts tabs ask it): always, unless the token mode let it in with the read token only."""
    return g.get("analytics_admin", True)


def token_protect(read_token: str | None, admin_token: str | None) -> Callable:
    """A `protect` for init_dashboard: 401 with a sign-in prompt without a valid token, 403
    for a metric write with the read token."""
    def protect(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(*args, **kwargs):
            given = presented_token()
            admin = _matches(given, admin_token)
            if not admin and not _matches(given, read_token):
                return error_response("Sign in with the access token: Authorization: Bearer <token> for API "
                                      "clients, or the token as password in the browser's prompt.",
                                      "Authorization", 401, {"WWW-Authenticate": REALM})
            if not admin and is_admin_write(request.method, request.path):
                return error_response("Saving or deleting custom metrics or alert rules needs the admin token.",
                                      "Authorization", 403)
            g.analytics_admin = admin
            return view(*args, **kwargs)
        return checked
    return protect
