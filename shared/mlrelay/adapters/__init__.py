"""The ports' implementations: GCS and Pub/Sub (imported lazily: cold start matters) and a
local folder."""
