"""Schedule arithmetic the trigger needs at run time: cron slots and the members a tick fans
out to."""
