"""Source connectors, one package each, registered by source kind."""

from .article.crawler import ArticleConnector
from .base import Connector, ConnectorError, FetchedDocument
from .upload.crawler import UploadConnector

CONNECTORS: dict[str, Connector] = {c.kind: c for c in (UploadConnector(), ArticleConnector())}


def connector_for(source) -> Connector:
    return CONNECTORS[source.kind]


__all__ = ["CONNECTORS", "Connector", "ConnectorError", "FetchedDocument", "connector_for"]
