"""pfharness: page-fault tracing with the pf_probe_A/B/C kernel modules."""

__version__ = "0.2.0"
