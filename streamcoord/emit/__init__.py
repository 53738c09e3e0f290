"""Emitters: put CloudEvents onto the events topic from Python, acknowledged before returning.

``await streamcoord.emit("shop.orders.landed", source="shop/etl", data={...})`` for one event,
:class:`Emitter` (an async context manager) for many.
"""

from streamcoord.emit._emitter import EVENTS_TOPIC, Delivery, EmitError, Emitter, SendHook, emit

__all__ = ["EVENTS_TOPIC", "Delivery", "EmitError", "Emitter", "SendHook", "emit"]
