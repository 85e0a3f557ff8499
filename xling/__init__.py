"""xling: MAD-X (Pfeiffer et al., 2020) on XLM-R and mBERT with Hugging Face transformers.

Language adapters with invertible (NICE) adapters trained by masked LM, task
adapters stacked above them, zero-shot transfer by swapping the language
adapter, AdapterHub interop, and the ``xling`` command line.
"""
