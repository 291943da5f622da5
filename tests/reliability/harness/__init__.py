"""A cloud-shaped harness: the services as functions-framework HTTP servers on loopback, wired by
Google's Pub/Sub emulator with push subscriptions, against the GCS and BigQuery emulators, a
loopback Vertex AI and a loopback Slack, with faults injected in between (cloud.py).
"""
