"""mlrelay: the library the four services share (contracts, registry, run identity, ports)."""

__version__ = "0.1.0"
