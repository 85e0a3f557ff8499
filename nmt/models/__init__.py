"""Importing this package registers the model ``adapter_transformer`` and its architectures."""

from . import architectures  # noqa: F401  (registers the architectures)
from .adapter_transformer import (AdapterTransformerDecoder, AdapterTransformerEncoder, AdapterTransformerModel,
                                  adapter_parameter_counts)

__all__ = ["AdapterTransformerDecoder", "AdapterTransformerEncoder", "AdapterTransformerModel",
           "adapter_parameter_counts"]
