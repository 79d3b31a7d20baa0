"""Getting directives to devices wherever (and whenever) their downchannel is."""

from .store_forward import Delivery, PushResult

__all__ = ["Delivery", "PushResult"]
