"""Serve the embedded endpoint's split on this machine (`mlrelay predict`): each deployed model
loaded once, each request answered by one model picked at random by the split, as Vertex AI's
endpoints route requests."""

from __future__ import annotations

import json
import pickle
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrelay.adapters.embedded_endpoint import ENDPOINTS, model_file, read_endpoint
from mlrelay.errors import PermanentError

_EXAMPLE = '\'{"island": "Biscoe", "bill_length_mm": 45.1, ...}\''


@dataclass(frozen=True)
class Served:
    deployed_model_id: str
    run_id: str | None
    estimator: Any
    features: tuple[str, ...]  # the columns it was fitted on (empty: unknown)


def parse_rows(text: str) -> list[dict[str, Any]]:
    """ROW_JSON: one JSON object (one request) or a list of them."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise PermanentError(
            "ROW_JSON", f"is not JSON ({error})", f"give one object, e.g. {_EXAMPLE}, or a list"
        ) from None
    rows = document if isinstance(document, list) else [document]
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            where = f"ROW_JSON[{index}]" if isinstance(document, list) else "ROW_JSON"
            raise PermanentError(
                where, f"is a {type(row).__name__}, not an object", f"give e.g. {_EXAMPLE}"
            )
    if not rows:
        raise PermanentError("ROW_JSON", "is an empty list", "give at least one object")
    return rows


def load_endpoint(home: Path, endpoint: str) -> list[tuple[Served, int]]:
    """The endpoint's models that serve traffic, each loaded once, with their percentages."""
    state = read_endpoint(home, endpoint)
    if state is None:
        folder = home / ENDPOINTS
        known = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        raise PermanentError(
            "ENDPOINT",
            f"no embedded endpoint {endpoint!r} in {folder} (known: {', '.join(known) or 'none'})",
            "give the `promotion.endpoint` of a pipeline whose run succeeded on this machine",
        )
    by_id = {d.id: d for d in state.deployed}
    served = []
    for deployed_id, percent in state.traffic.items():
        if percent <= 0:
            continue
        deployed = by_id[deployed_id]
        estimator = _load(model_file(home, deployed.model))
        features = tuple(str(f) for f in getattr(estimator, "feature_names_in_", ()))
        served.append((Served(deployed_id, deployed.run_id, estimator, features), percent))
    if not served:
        raise PermanentError(
            "ENDPOINT",
            f"{endpoint!r} serves no model (nothing deployed)",
            "promote a run's model to it first",
        )
    return served


def predict(
    served: Sequence[tuple[Served, int]], rows: Sequence[dict[str, Any]], rng: random.Random
) -> list[dict[str, Any]]:
    """One answer per row: `{"prediction", "deployed_model_id", "run_id"}`, each row's model
    drawn by the split; the rows of one model are predicted together."""
    import pandas as pd

    models = [model for model, _ in served]
    picks = rng.choices(range(len(models)), weights=[percent for _, percent in served], k=len(rows))
    answers: list[dict[str, Any]] = [{} for _ in rows]
    for index, model in enumerate(models):
        mine = [i for i, pick in enumerate(picks) if pick == index]
        if not mine:
            continue
        for i in mine:
            missing = [f for f in model.features if f not in rows[i]]
            if missing:
                where = f"ROW_JSON[{i}]" if len(rows) > 1 else "ROW_JSON"
                raise PermanentError(
                    f"{where}.{missing[0]}",
                    f"is missing: the model of run {model.run_id} reads "
                    f"{', '.join(model.features)}",
                    f"add {', '.join(missing)} to the row",
                )
        frame = pd.DataFrame([rows[i] for i in mine])
        if model.features:
            frame = frame[list(model.features)]
        for i, prediction in zip(mine, model.estimator.predict(frame).tolist(), strict=True):
            answers[i] = {
                "prediction": prediction,
                "deployed_model_id": model.deployed_model_id,
                "run_id": model.run_id,
            }
    return answers


def _load(path: Path) -> Any:
    if path.suffix == ".joblib":
        import joblib

        return joblib.load(path)
    with path.open("rb") as handle:  # a model mlrelay copied from one of its runs
        return pickle.load(handle)  # noqa: S301 - written by this machine's own training run
