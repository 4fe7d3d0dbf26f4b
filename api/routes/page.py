"""``GET /``: the analysts' page (API.md "The playground") and the files it loads.

Everything the page needs is served from here (``api/static``, CodeMirror vendored under
``api/static/vendor``): it talks to the public API only and fetches nothing from elsewhere,
which its Content-Security-Policy also tells the browser to refuse.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from api.extension import calc

bp = Blueprint(
    "page",
    __name__,
    static_folder="../static",
    static_url_path="/static",
    template_folder="../templates",
)

# Only this service: no CDN, no inline script, nothing framed. Inline style attributes stay
# out too (the page sets styles through the CSSOM, which the policy allows).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


@bp.get("/")
def index() -> Response:
    html = render_template("page.html", auth_required=calc().settings.auth == "required")
    return Response(
        html,
        mimetype="text/html",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )
