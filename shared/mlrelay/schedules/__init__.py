"""Schedules: cron slots, fan-out members, Cloud Scheduler sync, backfill and the local cron."""
