"""Google Cloud implementations of the shared ports (imported lazily: cold start matters)."""
