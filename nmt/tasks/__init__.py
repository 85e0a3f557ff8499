"""Importing this package registers the task ``adapter_translation``."""

from .adapter_translation import AdapterTranslationTask, is_plain_transformer, unwrap_model

__all__ = ["AdapterTranslationTask", "is_plain_transformer", "unwrap_model"]
