"""Publisher port on Google Cloud Pub/Sub (honours PUBSUB_EMULATOR_HOST for tests)."""

from __future__ import annotations

import structlog

from mlrelay.errors import ConfigurationError, PermanentError, TransientError

log = structlog.get_logger()


class PubSubPublisher:
    def __init__(self, project: str, timeout_seconds: float = 30.0) -> None:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

        self.project = project
        self.timeout = timeout_seconds
        self.client = pubsub_v1.PublisherClient()

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        from google.api_core import exceptions

        try:
            future = self.client.publish(self.topic_path(topic), data, **attributes)
            message_id: str = future.result(timeout=self.timeout)
        except (exceptions.NotFound, exceptions.PermissionDenied) as exc:
            raise ConfigurationError(  # our set-up: the message succeeds once it is fixed
                "topic",
                f"cannot publish to {self.topic_path(topic)}: {exc.message}",
                "create the topic (infra/) and grant roles/pubsub.publisher",
            ) from None
        except exceptions.InvalidArgument as exc:
            raise PermanentError(
                "topic", f"{self.topic_path(topic)} refused the message: {exc.message}"
            ) from None
        except (exceptions.GoogleAPICallError, TimeoutError) as exc:
            raise TransientError(f"publish to {topic} failed: {exc}") from exc
        log.info(
            "message_published",
            topic=topic,
            message_id=message_id,
            event_type=attributes.get("event_type"),
        )
        return message_id
