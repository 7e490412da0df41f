"""The connector registry: each package here with a `connector.py` defining `connector`
is a source kind. Adding a connector is adding a package: the views, the API, the
forms, `do_add_source` and the crawl task all dispatch through this registry.
"""

import importlib
import pkgutil
from pathlib import Path

from django.http import Http404

from .base import Connector, ConnectorError, Item, extract_html, extract_text

FetchedDocument = Item  # the name connectors used before items carried validators


def _discover() -> dict[str, Connector]:
    found = []
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.ispkg:
            found.append(importlib.import_module(f"{__name__}.{module.name}.connector").connector)
    return {connector.kind: connector for connector in sorted(found, key=lambda c: c.order)}


CONNECTORS: dict[str, Connector] = _discover()


def connector_for(source) -> Connector:
    return CONNECTORS[source.kind]


def connector_named(kind: str) -> Connector:
    """The connector of a kind a request names; an unknown kind is a 404."""
    try:
        return CONNECTORS[kind]
    except KeyError:
        raise Http404(f"No connector of kind {kind!r}.") from None


def recognise(url: str = "", filename: str = "") -> Connector | None:
    """The connector for what a user pasted or uploaded, most specific first."""
    for connector in sorted(CONNECTORS.values(), key=lambda c: c.recognition_order):
        if connector.recognises(url=url.strip(), filename=filename):
            return connector
    return None


__all__ = [
    "CONNECTORS",
    "Connector",
    "ConnectorError",
    "FetchedDocument",
    "Item",
    "connector_for",
    "connector_named",
    "extract_html",
    "extract_text",
    "recognise",
]
