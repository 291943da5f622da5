"""trigger: turn a run request into an accepted run with a deterministic id, or a rejection."""
