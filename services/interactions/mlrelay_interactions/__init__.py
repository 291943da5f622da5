"""The interactions function: the public door that turns a signed, authorised Slack click or
slash command into one `RunCommand` on the commands topic (docs/slack-actions.md)."""
