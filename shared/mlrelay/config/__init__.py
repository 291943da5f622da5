"""Configuration: settings read once from the environment, topic names, the function table."""
