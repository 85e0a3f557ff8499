"""The studies: scripts that check what the papers claim, build comparison tables, sweep learning rates and
write the reports' READMEs.  They call the library (``adapter_core``, ``nmt``, ``xling``, ``data_prep``); the
library never imports them.  The recipes run them from the repository root as
``python -m studies.<name>`` (with the root on ``PYTHONPATH``).  See ``docs/studies.md``.
"""
