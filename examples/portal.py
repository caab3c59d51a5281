"""A tiny Flask portal with a login page that embeds the analytics dashboard at
/ops/analytics/ behind its login.

    gunicorn examples.portal:app        (from the repository root)

Demo credentials: PORTAL_USER / PORTAL_PASSWORD (default ops / ops).
"""
from __future__ import annotations

import hmac
import os
import secrets

from flask import Flask, redirect, render_template_string, request, url_for
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


def create_portal() -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY") or secrets.token_hex(32)
    expected_user = os.environ.get("PORTAL_USER", "ops")
    expected_password = os.environ.get("PORTAL_PASSWORD", "ops")

    login_manager = LoginManager(app)
    login_manager.login_view = "login"
    login_manager.user_loader(lambda user_id: User(user_id) if user_id == expected_user else None)

    @app.route("/login", methods=["GET", "POST"])
    def login():
        error = None
        if request.method == "POST":
            user_ok = hmac.compare_digest(request.form.get("username", ""), expected_user)
            password_ok = hmac.compare_digest(request.form.get("password", ""), expected_password)
            if user_ok and password_ok:
                login_user(User(expected_user))
                target = request.args.get("next", "")
                return redirect(target if target.startswith("/") and not target.startswith("//") else "/")
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
