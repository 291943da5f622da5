"""Canary promotion of a run's model (docs/promotion.md): the flow after a successful run, the
promote / rollback commands, and `auto_promote_after`."""
