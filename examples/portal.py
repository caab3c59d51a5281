"""A tiny Flask portal with a login page that embeds the analytics dashboard at
/ops/analytics/ behind its login.

    gunicorn examples.portal:app        (from the repository root)

Demo credentials: PORTAL_USER / PORTAL_PASSWORD (default ops / ops). SECRET_KEY is required:
every worker must sign sessions with the same key.
"""
from __future__ import annotations

import hmac
import os
from urllib.parse import urlsplit

from flask import Flask, jsonify, redirect, render_template_string, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, login_required, login_user, logout_user

from dashapp import init_dashboard

LOGIN_PAGE = """<!doctype html><title>Ops portal — sign in</title>
<div style="max-width:22rem;margin:6rem auto;font-family:system-ui">
<h1 style="font-size:1.4rem">Ops portal</h1>
{% if error %}<p style="color:#b00020">{{ error }}</p>{% endif %}
<form method="post">
<label>User <input name="username" autofocus></label><br><br>
<label>Password <input name="password" type="password"></label><br><br>
<button type="submit">Sign in</button></form></div>"""

HOME_PAGE = """<!doctype html><title>Ops portal</title>
<div style="max-width:40rem;margin:4rem auto;font-family:system-ui">
<h1 style="font-size:1.4rem">Ops portal</h1>
<p><a href="/ops/analytics/">Notification analytics</a> · <a href="/logout">Sign out</a></p></div>"""


class User(UserMixin):
    def __init__(self, user_id: str):
        self.id = user_id


class Sessions(SecureCookieSessionInterface):
    """The session cookie is marked Secure whenever the request came over TLS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)


def safe_next(target: str | None) -> str:
    """A same-site path to go to after login, or "/": no scheme, no host, no `//` or `\\`
    start, and no control or space characters a browser would strip (`/%09/evil.example`
    is `//evil.example` to it)."""
    if not target or not target.startswith("/") or any(c <= " " or c in "\\\x7f" for c in target):
        return "/"
    parts = urlsplit(target)
    if target.startswith("//") or parts.scheme or parts.netloc:
        return "/"
    return target


def wants_json() -> bool:
    """API calls, Dash callbacks and other non-page requests: they get 401 JSON, not a login page."""
    if request.path.startswith("/api/") or "/_dash-" in request.path:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def create_portal() -> Flask:
    secret = os.environ.get("SECRET_KEY")
    if not secret:
        raise RuntimeError("SECRET_KEY must be set: every worker signs and checks sessions with it "
                           "(a random key per worker logs users out at random)")
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secret, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_HTTPONLY=True,
                      REMEMBER_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_HTTPONLY=True)
    app.session_interface = Sessions()
    expected_user = os.environ.get("PORTAL_USER", "ops")
    expected_password = os.environ.get("PORTAL_PASSWORD", "ops")

    login_manager = LoginManager(app)
    login_manager.login_view = "login"
    login_manager.user_loader(lambda user_id: User(user_id) if user_id == expected_user else None)

    @login_manager.unauthorized_handler
    def unauthorized():
        if wants_json():
            return jsonify({"error": "Your session has expired or you are not signed in: sign in again.",
                            "field": None, "login": url_for("login")}), 401
        return redirect(url_for("login", next=request.full_path.rstrip("?")))

    @app.route("/login", methods=["GET", "POST"])
    def login():
        error = None
        if request.method == "POST":
            user_ok = hmac.compare_digest(request.form.get("username", ""), expected_user)
            password_ok = hmac.compare_digest(request.form.get("password", ""), expected_password)
            if user_ok and password_ok:
                login_user(User(expected_user))
                return redirect(safe_next(request.args.get("next")))
            error = "Wrong user or password."
        return render_template_string(LOGIN_PAGE, error=error)

    @app.route("/logout")
    def logout():
        logout_user()
        return redirect(url_for("login"))

    @app.route("/")
    @login_required
    def home():
        return render_template_string(HOME_PAGE)

    init_dashboard(app, url_base_pathname="/ops/analytics/", protect=login_required)
    return app


app = create_portal()
