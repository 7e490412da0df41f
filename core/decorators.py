"""View decorators every app shares."""

from django.views.decorators.http import require_http_methods

# A page with a form: GET (and HEAD) shows it, POST submits it; any other method is a 405.
# Read-only pages use Django's require_safe, actions require_POST: each route takes only its methods.
require_form_methods = require_http_methods(["GET", "HEAD", "POST"])
