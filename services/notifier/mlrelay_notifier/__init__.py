"""notifier: turn lifecycle events and dead letters into one chat message each."""
