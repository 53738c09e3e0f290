"""HTTP ingest: CloudEvents over HTTP (structured, binary, batch) onto the events topic."""

from streamcoord.ingest._app import EventWriter, create_app
from streamcoord.ingest._binding import BATCH_CONTENT_TYPE, IngestError, events_from_request

__all__ = ["BATCH_CONTENT_TYPE", "EventWriter", "IngestError", "create_app", "events_from_request"]
