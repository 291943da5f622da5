"""Dead letters for operators: list the kept ones, replay one to its topic.

Replaying publishes the original data and attributes to the original topic: every stage is
idempotent per run id, so a replay after a fix completes the run without doubling anything done
before the failure. The records are kept by the runtime (`mlrelay.stage.dead_letters`).
"""

from __future__ import annotations

import json

from mlrelay.contracts import utc_now
from mlrelay.errors import PermanentError
from mlrelay.ports.protocols import ObjectStore, Publisher
from mlrelay.stage import keys
from mlrelay.stage.dead_letters import DeadLetter, read_dead_letter_at


def list_dead_letters(store: ObjectStore, *, include_replayed: bool = True) -> list[DeadLetter]:
    letters = [read_dead_letter_at(store, key) for key in sorted(store.list(keys.DEAD_LETTERS))]
    return [d for d in letters if include_replayed or d.replayed_at is None]


def find_dead_letter(store: ObjectStore, ident: str) -> DeadLetter:
    """By message id (as `list` shows it) or by its full key."""
    letters = list_dead_letters(store)
    found = [d for d in letters if ident in (d.message_id, d.key)]
    if not found:
        raise PermanentError(
            "id", f"{ident!r} is not a dead letter in the bucket", "see `mlrelay deadletters list`"
        )
    if len(found) > 1:
        keys = ", ".join(d.key for d in found)
        raise PermanentError("id", f"{ident!r} names several dead letters ({keys})", "pass a key")
    return found[0]


def replay_dead_letter(
    store: ObjectStore, publisher: Publisher, ident: str, *, force: bool = False
) -> DeadLetter:
    """Publish the original message to its topic again and note the replay in its record."""
    letter = find_dead_letter(store, ident)
    if letter.replayed_at and not force:
        raise PermanentError(
            "id",
            f"{letter.message_id} was replayed at {letter.replayed_at} as {letter.replayed_as}",
            "pass --force to replay it again (the stages will not redo finished work)",
        )
    if not letter.topic:
        raise PermanentError(
            "topic",
            f"the record {letter.key} does not say which topic {letter.subscription} reads",
            "publish the message yourself with `gcloud pubsub topics publish`",
        )
    new_id = publisher.publish(letter.topic, letter.data, letter.attributes)
    record = json.loads(store.read(letter.key) or b"{}")
    record.update(replayed_at=utc_now().isoformat(), replayed_as=new_id)
    store.write(letter.key, json.dumps(record, indent=2).encode())
    return read_dead_letter_at(store, letter.key)
