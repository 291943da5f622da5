"""The `mlrelay` command line."""
