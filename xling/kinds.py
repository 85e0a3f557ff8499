"""The adapter kinds and sites xling hosts: ``adapter_core.flags.KINDS`` plus the K-adapter, and the sites
its hooks offer (stdlib and adapter_core only, so that ``xling --help`` stays quick).  The command line
(``xling.cli_methods``) and the library (``xling.inference``, ``xling.k_adapter_train``) both read them here."""

from adapter_core import ADAPTER_KINDS, ATTENTION_SITES, Site, host_placements

#: The task adapter kind that sits beside the frozen encoder instead of in it (Wang et al. 2021; ``xling.k_adapter``).
K_ADAPTER_KIND = "k-adapter"
#: The sites xling's hooks offer (``xling.attach``): Pfeiffer's FFN site, Houlsby's two, and the self-attention's
#: projections and keys/values (LoRA, prefix tuning: ``xling.attention_sites``).
XLING_SITES = (Site.ATTENTION, Site.FFN, Site.FFN_PFEIFFER, *ATTENTION_SITES)
#: --adapter-placement choices: pfeiffer, houlsby, query_value, query_key_value and prefix
#: (``adapter_core.placement.host_placements``).
ADAPTER_PLACEMENTS = host_placements(XLING_SITES)

__all__ = ["ADAPTER_KINDS", "ADAPTER_PLACEMENTS", "K_ADAPTER_KIND", "XLING_SITES"]
