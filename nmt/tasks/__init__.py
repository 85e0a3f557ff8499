"""Importing this package registers the task ``adapter_translation``."""

from .adapter_translation import AdapterTranslationTask, unwrap_model

__all__ = ["AdapterTranslationTask", "unwrap_model"]
