"""Bot-token mode: the one Slack message of a run, remembered in the bucket.

`notifications/<run_id>/message.json` holds the channel id and `ts` of the run's message and the
furthest status it shows. It is created create-only (`posting`) before the message is posted, so
two deliveries cannot both post the run's first message, and moved on with compare-and-swap.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

from mlrelay.contracts import utc_now
from mlrelay.errors import TransientError
from mlrelay.ports.protocols import ObjectStore
from mlrelay.stage import keys

POSTING_LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class RunMessage:
    state: str  # "posting" (someone is posting it) or "posted"
    channel: str = ""
    ts: str = ""
    rank: int = 0  # how far the run had got when the message was last rendered
    status: str = ""
    until: str = ""  # posting: when the claim lapses (its worker died)
    # the thread the message is in when it is a reply itself (a later attempt of a run posts in
    # its original's thread); "": the message is top-level and its own thread's root
    thread_ts: str = ""

    @property
    def thread(self) -> str:
        """What a reply to this run names as its `thread_ts`: Slack's thread root."""
        return self.thread_ts or self.ts

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()


def message_key(run_id: str) -> str:
    return keys.run_message(run_id)


def read_message(store: ObjectStore, run_id: str) -> tuple[RunMessage, str] | None:
    found = store.read_versioned(message_key(run_id))
    if found is None:
        return None
    return RunMessage(**json.loads(found[0])), found[1]


def claim_first_post(store: ObjectStore, run_id: str) -> RunMessage | None:
    """None: this delivery may post the run's first message. A RunMessage: it exists already.
    TransientError: another delivery is posting it right now (retry shortly)."""
    claim = RunMessage("posting", until=(utc_now() + POSTING_LEASE).isoformat())
    key = message_key(run_id)
    if store.create(key, claim.to_json()):
        return None
    found = read_message(store, run_id)
    if found is None:
        raise TransientError(f"{key}: vanished while reading it; retry")
    message, generation = found
    if message.state == "posted":
        return message
    if datetime.fromisoformat(message.until) > utc_now():
        raise TransientError(f"{key}: another delivery is posting the run's message")
    if not store.replace(key, claim.to_json(), generation):
        raise TransientError(f"{key}: another delivery took over the lapsed claim")
    return None


def release_claim(store: ObjectStore, run_id: str) -> None:
    found = read_message(store, run_id)
    if found is not None and found[0].state == "posting":
        store.delete(message_key(run_id))


def record_posted(store: ObjectStore, run_id: str, message: RunMessage) -> None:
    store.write(message_key(run_id), message.to_json())


def advance(store: ObjectStore, run_id: str, rank: int, status: str) -> RunMessage | None:
    """Move the message's recorded state to `rank` unless it already shows as much or more;
    returns the message to update, or None when it should stay as it is."""
    for _ in range(5):
        found = read_message(store, run_id)
        if found is None or found[0].state != "posted":
            return None
        message, generation = found
        if message.rank > rank:
            return None
        moved = replace(message, state="posted", rank=rank, status=status)
        if store.replace(message_key(run_id), moved.to_json(), generation):
            return moved
    raise TransientError(f"{message_key(run_id)}: too many concurrent updates; retry")
