"""Layer subclasses that carry adapters."""

from .adapter_layers import AdapterDecoderLayer, AdapterEncoderLayer

__all__ = ["AdapterDecoderLayer", "AdapterEncoderLayer"]
