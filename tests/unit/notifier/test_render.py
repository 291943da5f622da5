"""What the Slack messages say: the run card and the one-line update (`mlrelay notify preview`
prints them: tests/integration/tools/cli/test_notify_commands.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from mlrelay.contracts import LifecycleEvent
from mlrelay_notifier.render import render_card, render_text, render_update
from mlrelay_notifier.run_view import build_run_view
from tests.fakes.slack import block_problem
from tests.helpers import SAMPLE_ACCEPTED as ACCEPTED
from tests.helpers import SAMPLE_RUN as RUN
from tests.helpers import sample_failed_event as failed_event
from tests.helpers import sample_ledger as ledger


def all_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def test_failure_card_says_what_failed_where_with_links_and_error_excerpt() -> None:
    view = build_run_view(failed_event(), ledger(), project="ml-prod")
    message = render_card(view)
    payload = message.payload()
    header = payload["blocks"][0]
    assert header["type"] == "header"
    assert header["text"]["text"] == ":x: penguins: failed"
    facts = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert f"*Run*\n`{RUN}`" in facts
    assert "*Triggered by*\nschedule slot 2026-11-30T05:00:00+00:00 by cloud-scheduler" in facts
    assert "*Duration*\n3 min 20 s" in facts
    assert "*Snapshot*\n344 rows · 12.3 kB" in facts
    assert "*Failed at*\npipeline / `train-model`" in facts
    [attachment] = payload["attachments"]
    assert attachment["color"] == "#E01E5A"
    text = all_text(attachment)
    assert "`min_year=2007` `n_estimators=100`" in text
    assert "```ValueError: bad input\\n  at train.py:12```" in text
    buttons = {
        e["text"]["text"]: e["url"]
        for b in attachment["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }
    assert buttons["Vertex"].startswith("https://console.cloud.google.com/vertex-ai/")
    assert buttons["Snapshot"] == (
        "https://console.cloud.google.com/storage/browser/_details/"
        "ml-bucket/snapshots/penguins/x/manifest.json?project=ml-prod"
    )
    assert buttons["Logs"] == (
        "https://console.cloud.google.com/logs/query;"
        f"query=labels.run_id%3D%22{RUN}%22;duration=P30D?project=ml-prod"
    )
    assert message.text.startswith(":x: penguins · pipeline.failed · run " + RUN)
    assert block_problem(payload["blocks"]) is None
    assert block_problem(attachment["blocks"]) is None


def test_long_error_is_cut_to_its_end_and_user_text_is_escaped() -> None:
    error = "start " + "x" * 5000 + " <@channel> & the real cause ``` here"
    payload = render_card(build_run_view(failed_event(error), ledger())).payload()
    text = all_text(payload["attachments"][0])
    assert "start" not in text  # the excerpt keeps the end, where the cause is
    assert "&lt;@channel&gt; &amp; the real cause ''' here```" in text
    assert block_problem(payload["attachments"][0]["blocks"]) is None


def test_success_card_shows_metrics_and_local_locations_as_text() -> None:
    event = LifecycleEvent(
        run_id=RUN,
        pipeline="penguins",
        stage="pipeline",
        status="succeeded",
        occurred_at=ACCEPTED + timedelta(seconds=42),
        summary="pipeline penguins succeeded",
        figures={"accuracy": 0.9767441860465116, "duration_seconds": 8.1},
        links={"run_dir": "file:///tmp/runs/x", "log": "file:///tmp/runs/x/pipeline.log"},
    )
    payload = render_card(build_run_view(event, ledger())).payload()
    assert payload["blocks"][0]["text"]["text"] == ":white_check_mark: penguins: succeeded"
    attachment = payload["attachments"][0]
    assert attachment["color"] == "#2EB67D"
    text = all_text(attachment)
    assert "`accuracy=0.9767`" in text and "duration_seconds" not in text
    assert "Pipeline log: `file:///tmp/runs/x/pipeline.log`" in text
    assert not [b for b in attachment["blocks"] if b["type"] == "actions"]  # no file:// buttons
    facts = all_text(payload["blocks"][1])
    assert "*Duration*\\n42 s" in facts
    assert "Logs" not in text  # no Cloud Logging link without a Google project


def test_a_late_event_does_not_move_the_run_card_backwards() -> None:
    late = LifecycleEvent(
        run_id=RUN, pipeline="penguins", stage="trigger", status="accepted", occurred_at=ACCEPTED
    )
    records = ledger(deploy={"status": "succeeded", "metrics": {"accuracy": 0.97}, "links": {}})
    card = build_run_view(late, records)
    assert (card.status, card.stage) == ("succeeded", "pipeline")
    assert card.metrics == {"accuracy": 0.97}
    as_sent = build_run_view(late, records, advance=False)
    assert as_sent.status == "accepted"


def test_update_line_and_console_text() -> None:
    event = LifecycleEvent(
        run_id=RUN,
        pipeline="penguins",
        stage="snapshot",
        status="completed",
        summary="snapshot of 344 rows in 1 file(s)",
    )
    message = render_update(build_run_view(event, {}))
    assert message.blocks[0]["text"]["text"] == (
        ":package: *penguins* — snapshot of 344 rows in 1 file(s)"
    )
    assert message.console_text == render_text(event, console=True)
    assert message.console_text.startswith("[done] penguins · snapshot.completed")


def test_rejected_message_card_names_the_field_and_where_it_is_kept() -> None:
    event = LifecycleEvent(
        run_id="rejected-abc",
        stage="trigger",
        status="rejected",
        summary="trigger rejected a message: pipeline",
        error="pipeline: 'fraud' is not in the registry (use one of: penguins)",
        details={"field": "pipeline", "kept_at": "file:///b/rejected/rejected-abc.json"},
    )
    payload = render_card(build_run_view(event, {})).payload()
    assert payload["blocks"][0]["text"]["text"] == ":no_entry: unknown pipeline: message rejected"
    facts = all_text(payload["blocks"][1])
    assert "*Field*\\n`pipeline`" in facts and "rejected-abc.json" in facts
    assert payload["attachments"][0]["color"] == "#ECB22E"


def test_the_snapshots_quality_warnings_show_on_its_update_card_and_console_line() -> None:
    event = LifecycleEvent(
        run_id=RUN,
        pipeline="penguins",
        stage="snapshot",
        status="completed",
        summary="snapshot of 344 rows in 1 file(s)",
        details={"quality_warnings": ["sex: 11 nulls (3.2%), more than max_null_fraction 0.01"]},
    )
    view = build_run_view(event, ledger(), advance=False)
    update = all_text(render_update(view).payload())
    assert ":warning: sex: 11 nulls (3.2%), more than max_null_fraction 0.01" in update
    assert "*Data warnings*" in all_text(render_card(view).payload())
    assert "warning: sex: 11 nulls" in render_text(view, console=True)


def test_a_cancelled_run_is_a_grey_final_card_even_when_the_ledger_says_submitted() -> None:
    cancelled = LifecycleEvent(
        run_id=RUN,
        pipeline="penguins",
        stage="pipeline",
        status="cancelled",
        summary="pipeline cancelled by slack:U0ONCALL",
        details={"command": {"action": "cancel", "requested_by": "slack:U0ONCALL",
                             "requested_at": "2026-11-23T05:30:00+00:00", "source": "slack"}},
    )  # fmt: skip
    records = ledger(deploy={"status": "submitted", "links": {"console": "https://x.example"}})
    view = build_run_view(cancelled, records)
    assert (view.status, view.stage) == ("cancelled", "pipeline")
    assert view.links["console"] == "https://x.example"  # a final view keeps the job's links
    payload = render_card(view).payload()
    assert payload["blocks"][0]["text"]["text"] == ":no_entry_sign: penguins: cancelled"
    assert [a["color"] for a in payload["attachments"]] == ["#616061"]
    assert "Duration" in all_text(payload)
    assert render_text(cancelled, console=True).startswith("[cancelled] penguins")


def test_a_held_card_shows_what_the_approver_lets_through_and_until_when() -> None:
    quality = [
        {"name": "min_rows(100)", "passed": True},
        {"name": "not_null(sex)", "passed": False, "message": "11 nulls"},
    ]
    snapshot = {"rows": 344, "bytes": 12_345, "files": 1, "fingerprint": "ab" * 32}
    snapshot["quality"] = quality
    held = LifecycleEvent(
        run_id=RUN, pipeline="penguins", stage="pipeline", status="held",
        summary="held for approval: 344 rows, 1 files", occurred_at=ACCEPTED + timedelta(minutes=1),
        details={"snapshot": snapshot, "timeout_at": "2026-11-30T06:00:00+00:00"},
    )  # fmt: skip
    payload = render_card(build_run_view(held, ledger())).payload()
    assert payload["blocks"][0]["text"]["text"] == ":raised_hand: penguins: waiting for approval"
    [attachment] = payload["attachments"]
    assert attachment["color"] == "#ECB22E"
    text = all_text(attachment)
    assert "*Waiting for approval* until 2026-11-30T06:00:00+00:00" in text
    assert "344 rows · 12.3 kB · 1 files" in text
    assert f"fingerprint `{'ab' * 8}`" in text
    assert ":warning: not_null(sex): 11 nulls" in text
    assert ":white_check_mark: min_rows(100)" in text


def test_a_rejected_held_run_says_who_rejected_it_or_that_it_timed_out() -> None:
    command = {"requested_by": "slack:U0OPS", "requested_at": "2026-11-30T05:10:00+00:00"}
    for details, said in (
        ({"command": command}, "*Approval* rejected by slack:U0OPS at 2026-11-30T05:10:00+00:00"),
        ({"reason": "approval_timeout"}, "*Approval* timed out: nobody approved the run in time"),
    ):
        rejected = LifecycleEvent(
            run_id=RUN, pipeline="penguins", stage="pipeline", status="rejected",
            summary="rejected", details=details,
        )  # fmt: skip
        payload = render_card(build_run_view(rejected, ledger())).payload()
        assert payload["blocks"][0]["text"]["text"] == (
            ":no_entry: penguins: rejected before deploy"
        )
        assert said in all_text(payload["attachments"])
