"""What a dead-lettered lifecycle event tells people depends on whose subscription gave up: the
notifier's own is a lost notification; another consumer's (the promotion function reads the
lifecycle topic too) is that consumer's failure, and must not be called a notification."""

from __future__ import annotations

from pathlib import Path

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.config.settings import Settings
from mlrelay.contracts import LifecycleEvent
from mlrelay.ports.container import Ports
from mlrelay.stage.envelope import PubsubMessage
from mlrelay_notifier.notify import dead_letter_event

RUN = "penguins-manual-31ef3a6a42ff-0139aabf6d87"


def dead_letter_from(subscription: str) -> PubsubMessage:
    event = LifecycleEvent(
        run_id=RUN, pipeline="penguins", stage="pipeline", status="succeeded",
        summary="pipeline penguins succeeded",
    )  # fmt: skip
    attributes = {
        **event.attributes(),
        "CloudPubSubDeadLetterSourceSubscription": subscription,
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
    }
    return PubsubMessage(event.to_json(), attributes, "dl-1")


def test_a_promotion_functions_dead_letter_names_its_subscription_not_a_notification(
    tmp_path: Path,
) -> None:
    ports = Ports(Settings(home=tmp_path), store=LocalFolderStore(tmp_path / "bucket"))
    told = dead_letter_event(dead_letter_from("projects/p/subscriptions/mlrelay-promotions"), ports)
    assert told.summary == (
        "lifecycle.pipeline.succeeded on projects/p/subscriptions/mlrelay-promotions failed 5 "
        "deliveries and was dead-lettered"
    )
    assert "undelivered" not in told.details


def test_the_notifiers_own_dead_letter_is_a_lost_notification(tmp_path: Path) -> None:
    ports = Ports(Settings(home=tmp_path), store=LocalFolderStore(tmp_path / "bucket"))
    told = dead_letter_event(dead_letter_from("projects/p/subscriptions/mlrelay-notifier"), ports)
    assert told.summary.startswith("a notification (pipeline.succeeded: pipeline penguins ")
    assert told.details["undelivered"] == "pipeline.succeeded"
