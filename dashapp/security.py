"""Security headers on the dashboard's and the API's responses (the portal's own pages keep
whatever the portal sets): a Content-Security-Policy Dash works with (its inline scripts
allowed by hash, nothing from other origins), no MIME sniffing, framing only by the portal."""
from __future__ import annotations

from dash import Dash
from flask import Flask, request


def content_security_policy(script_hashes: list[str]) -> str:
    return "; ".join([
        "default-src 'self'",
        # plotly.js compiles some functions at run time, hence 'unsafe-eval'; inline scripts by hash only
        "script-src 'self' 'unsafe-eval' " + " ".join(script_hashes),
        "style-src 'self' 'unsafe-inline'",  # React and plotly set inline styles
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'self'",
        "base-uri 'self'",
        "form-action 'self'",
    ])


def add_security_headers(server: Flask, dash_app: Dash, prefix: str) -> None:
    policy = content_security_policy(list(dash_app.csp_hashes()))
    paths = (prefix, "/api/", "/health")

    @server.after_request
    def _headers(response):
        if request.path.startswith(paths):
            response.headers.setdefault("Content-Security-Policy", policy)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return response
