"""The distribution's version, in one place: pyproject.toml reads it (``[tool.setuptools.dynamic]``), and
``adapter_core``, ``nmt``, ``xling`` and ``data_prep`` re-export it as ``__version__``."""

__version__ = "0.1.0"
