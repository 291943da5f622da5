"""The embedded runtime: an in-process Pub/Sub stand-in wiring the four services on one machine."""
