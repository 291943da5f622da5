"""The penguins classifier as a plain training job (no Kubeflow): what `backend: local_job` runs
on this machine and `backend: vertex_custom_job` in a container on Vertex AI custom training.

The job contract (docs/custom-jobs.md): read the snapshot from its manifest
(`$MLRELAY_SNAPSHOT_MANIFEST_URI`: a local path, `file://` or `gs://`), write the model into
`$AIP_MODEL_DIR` (here `model.pkl`, a pickle of the fitted scikit-learn estimator: the file Vertex
AI's prebuilt scikit-learn serving container loads) and the metrics as one JSON object of numbers
into `$MLRELAY_OUTPUT_DIR/metrics.json`; exit status 0 is success.

The model and its evaluation are those of pipelines/penguins/pipeline.py: the same cleaning,
stratified split, random forest and metrics, so both backends train the same model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import posixpath
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]
TARGET = "species"
COLUMNS = [TARGET, "island", *NUMERIC, "sex"]
MODEL_FILE = "model.pkl"
METRICS_FILE = "metrics.json"


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """A local path, `file://` or `gs://` (pyarrow.fs; `gs://` honours STORAGE_EMULATOR_HOST)."""
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), str(Path(uri).resolve())


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open_input_stream(path) as stream:
        return bytes(stream.read())


def write_bytes(folder: str, name: str, data: bytes) -> str:
    fs, path = filesystem(folder.rstrip("/"))
    fs.create_dir(path, recursive=True)
    target = f"{path}/{name}"
    with fs.open_output_stream(target) as stream:
        stream.write(data)
    return target


def read_snapshot(manifest_uri: str, fingerprint: str) -> pd.DataFrame:
    """The snapshot's rows, each file checked against the manifest's sha256."""
    manifest = json.loads(read_bytes(manifest_uri))
    if fingerprint and manifest.get("fingerprint") != fingerprint:
        raise SystemExit(
            f"snapshot fingerprint mismatch: {manifest_uri} has {manifest.get('fingerprint')!r}, "
            f"the job was given {fingerprint!r}"
        )
    files = manifest.get("files") or []
    if not files:
        raise SystemExit(f"snapshot manifest {manifest_uri} lists no files")
    tables = []
    for entry in files:
        uri = entry.get("uri") or posixpath.join(posixpath.dirname(manifest_uri), entry["path"])
        data = read_bytes(uri)
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise SystemExit(f"sha256 mismatch for snapshot file {uri}: the snapshot changed")
        tables.append(pq.read_table(pa.BufferReader(data)))
    table = pa.concat_tables(tables, promote_options="permissive")
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise SystemExit(f"snapshot is missing columns: {missing}")
    frame = table.select(COLUMNS).to_pandas()
    for name in NUMERIC:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    frame = frame.dropna(subset=COLUMNS).reset_index(drop=True)
    for name in (TARGET, *CATEGORICAL):
        frame[name] = frame[name].astype(str)
    return frame


def make_estimator(n_estimators: int, max_depth: int, seed: int) -> Pipeline:
    features = ColumnTransformer(
        [
            ("numeric", "passthrough", NUMERIC),
            ("onehot", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    forest = RandomForestClassifier(
        n_estimators=n_estimators, max_depth=max_depth, random_state=seed
    )
    return Pipeline([("features", features), ("forest", forest)])


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default=env.get("MLRELAY_SNAPSHOT_MANIFEST_URI"))
    parser.add_argument("--fingerprint", default=env.get("MLRELAY_SNAPSHOT_FINGERPRINT", ""))
    parser.add_argument("--model-dir", default=env.get("AIP_MODEL_DIR"))
    parser.add_argument("--output-dir", default=env.get("MLRELAY_OUTPUT_DIR"))
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=6)
    parser.add_argument("--seed", type=int, default=42)
    parsed = parser.parse_args(argv)
    for name in ("manifest", "model_dir", "output_dir"):
        if not getattr(parsed, name):
            parser.error(f"--{name.replace('_', '-')} (or its environment variable) is required")
    if not 0.0 < parsed.test_fraction < 1.0:
        parser.error(f"--test-fraction must be in (0, 1), got {parsed.test_fraction}")
    return parsed


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    frame = read_snapshot(args.manifest, args.fingerprint)
    train, test = train_test_split(
        frame, test_size=args.test_fraction, random_state=args.seed, stratify=frame[TARGET]
    )
    estimator = make_estimator(args.n_estimators, args.max_depth, args.seed)
    estimator.fit(train[NUMERIC + CATEGORICAL], train[TARGET])
    predicted = estimator.predict(test[NUMERIC + CATEGORICAL])
    metrics: dict[str, Any] = {
        "accuracy": float(accuracy_score(test[TARGET], predicted)),
        "f1_macro": float(f1_score(test[TARGET], predicted, average="macro")),
        "n_train": len(train),
        "n_test": len(test),
    }
    model = write_bytes(args.model_dir, MODEL_FILE, pickle.dumps(estimator))
    write_bytes(args.output_dir, METRICS_FILE, json.dumps(metrics).encode())
    print(json.dumps({"model": model, **metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
