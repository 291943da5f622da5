"""mlrelay's runtime: what ships inside every Cloud Function (contracts, errors, logs, config,
registry, stage machinery, ports and their adapters, schedule slots). It imports neither the
operator tooling (`mlrelay_tools`) nor any service package; a test keeps that line."""

__version__ = "0.1.0"
