"""The connector of a source, for templates: `{% with connector=source|connector %}`.

The model knows no connectors (connectors import the models, never the reverse); the
pages that show a source's kind and schedule ask here.
"""

from django import template

from ..connectors import connector_for

register = template.Library()


@register.filter
def connector(source):
    return connector_for(source)
