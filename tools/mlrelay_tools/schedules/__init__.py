"""Schedules as Cloud Scheduler jobs (desired jobs, sync, export), backfill and the local cron
loop."""
