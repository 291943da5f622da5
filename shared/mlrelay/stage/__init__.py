"""What every stage shares: the doorway, the envelope, the run ledger and its leases, run ids,
dead letters and the bucket keys."""
