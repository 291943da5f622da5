"""The watchdog: one pass over the open runs and the schedules' slots (docs/watchdog.md)."""
