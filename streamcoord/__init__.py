"""streamcoord: an event-driven pipeline coordinator on Kafka."""

__version__ = "0.1.0"

__all__ = ["__version__"]
