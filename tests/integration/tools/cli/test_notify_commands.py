"""`mlrelay notify preview` and `mlrelay notify undelivered`, run as a user runs them (a real
subprocess), on a run kept in a local bucket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlrelay.adapters.local_folder import LocalFolderStore
from mlrelay.contracts import LifecycleEvent
from mlrelay.stage import keys
from mlrelay_notifier.undelivered import keep_undelivered
from tests.helpers import REGISTRY, REPO
from tests.helpers import SAMPLE_RUN as RUN
from tests.helpers import sample_failed_event as failed_event
from tests.helpers import sample_ledger as ledger

MLRELAY = str(Path(sys.executable).parent / "mlrelay")


def all_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def event(status: str, run_id: str = "penguins-a-1", stage: str = "pipeline") -> LifecycleEvent:
    return LifecycleEvent(run_id=run_id, pipeline="penguins", stage=stage, status=status)  # type: ignore[arg-type]


def test_preview_prints_block_kit_json_for_an_event_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = LocalFolderStore(home / "bucket")
    for stage, record in ledger().items():
        store.write(keys.ledger(RUN, stage), record.to_json())
    event_file = tmp_path / "event.json"
    event_file.write_bytes(failed_event().to_json())
    env = {**os.environ, "MLRELAY_HOME": str(home), "MLRELAY_REGISTRY": str(REGISTRY)}
    done = subprocess.run(
        [MLRELAY, "notify", "preview", str(event_file)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert set(payload) == {"text", "blocks", "attachments"}
    assert "344 rows" in all_text(payload["blocks"])  # from the run ledger
    update = subprocess.run(
        [MLRELAY, "notify", "preview", "--update", "--no-ledger", str(event_file)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(update.stdout)["blocks"][0]["type"] == "section"
    event_file.write_text('{"run_id": "x"}')
    bad = subprocess.run(
        [MLRELAY, "notify", "preview", str(event_file)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1 and "stage: Field required" in bad.stderr


def test_undelivered_lists_what_slack_did_not_take(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = LocalFolderStore(home / "bucket")
    keep_undelivered(
        store, event("failed"), {"text": "x"}, route="#ml", reason="Slack answered 503"
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mlrelay"), "notify", "undelivered"],
        cwd=REPO,
        env={**os.environ, "MLRELAY_HOME": str(home), "MLRELAY_REGISTRY": str(REGISTRY)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "penguins-a-1  pipeline.failed" in done.stdout and "Slack answered 503" in done.stdout
    assert (
        json.loads(store.read(store.list("notifications/undelivered/")[0]) or b"")["route"] == "#ml"
    )


def test_preview_of_a_promotion_event_is_the_runs_success_card_with_its_model(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    store = LocalFolderStore(home / "bucket")
    for stage, record in ledger().items():
        store.write(keys.ledger(RUN, stage), record.to_json())
    canary = LifecycleEvent(
        run_id=RUN,
        pipeline="penguins",
        stage="promotion",
        status="canary",
        summary="model v3 serves 10 %",
        details={
            "endpoint": "penguins-prod",
            "version_id": "3",
            "deployed_model_id": "222",
            "canary_percent": 10,
            "traffic": {"111": 90, "222": 10},
            "champion_run_id": None,
        },
    )
    event_file = tmp_path / "event.json"
    event_file.write_bytes(canary.to_json())
    env = {**os.environ, "MLRELAY_HOME": str(home), "MLRELAY_REGISTRY": str(REGISTRY)}
    done = subprocess.run(
        [MLRELAY, "notify", "preview", str(event_file)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    blocks = json.loads(done.stdout)["blocks"]
    assert blocks[0]["text"]["text"] == ":white_check_mark: penguins: succeeded"
    assert "Challenger v3 serves 10 % of `penguins-prod` beside the champion (90 %)" in all_text(
        blocks
    )
