"""streamcoord: an event-driven pipeline coordinator on Kafka."""

__version__ = "0.1.0"

# ``streamcoord.emit(...)`` is the function. Imported eagerly on purpose: the attribute must be
# bound before anything imports the ``streamcoord.emit`` package, which would otherwise shadow it.
from streamcoord.emit import Emitter, emit  # after __version__, which cli reads

__all__ = ["Emitter", "__version__", "emit"]
