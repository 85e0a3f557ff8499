"""The adapter kinds and sites xling hosts: ``adapter_core.flags.KINDS`` plus the K-adapter, and the sites
its hooks offer (stdlib and adapter_core only, so that ``xling --help`` stays quick).  The command line
(``xling.cli_methods``) and the library (``xling.inference``, ``xling.k_adapter_train``) both read them here."""

from adapter_core import ADAPTER_KINDS, Site, host_placements

#: The task adapter kind that sits beside the frozen encoder instead of in it (Wang et al. 2021; ``xling.k_adapter``).
K_ADAPTER_KIND = "k-adapter"
#: The sites xling's hooks offer (``xling.attach``): Pfeiffer's FFN site and Houlsby's two.
XLING_SITES = (Site.ATTENTION, Site.FFN, Site.FFN_PFEIFFER)
#: --adapter-placement choices: pfeiffer and houlsby (``adapter_core.placement.host_placements``).
ADAPTER_PLACEMENTS = host_placements(XLING_SITES)

__all__ = ["ADAPTER_KINDS", "ADAPTER_PLACEMENTS", "K_ADAPTER_KIND", "XLING_SITES"]
