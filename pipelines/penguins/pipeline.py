"""Kubeflow Pipelines v2 pipeline ``penguins-training``: preprocess -> train -> evaluate.

The three steps are lightweight Python components on ``python:3.11-slim``, which has no
third-party packages: each step's ``packages_to_install`` (``PACKAGES``) lists what it imports, and
KFP's bootstrap pip-installs it from PyPI when the step starts on Vertex AI or a KFP host. Locally
(``kfp.local``) the deployer's own environment already satisfies the list, and the local runner
forbids pip any package index, so nothing is downloaded. ``compile.py`` refuses a template whose
components import something their image and install list do not provide
(``mlrelay.kfp_components.component_imports``).

They run inside a ``dsl.ExitHandler`` whose exit task is mlrelay's completion reporter: however
the steps end, it publishes ``pipeline.succeeded`` or ``pipeline.failed`` for the run to
``mlrelay_lifecycle_destination`` (the deployer fills it in; empty means report nothing).
"""

import os

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from mlrelay.kfp_components import completion_reporter

# Any image with Python 3.11+ and pip (see component_imports.IMAGE_IMPORTS). Locally,
# kfp.local's SubprocessRunner ignores the image and runs the steps in the deployer's Python.
BASE_IMAGE: str = os.environ.get("MLRELAY_PIPELINE_BASE_IMAGE", "python:3.11-slim")
# What the steps import, installed at the start of each step on remote backends (KFP's bootstrap
# then installs kfp itself). The ranges are the project's own (pyproject.toml), bounded to the
# major versions it is tested with, so a local run proves the calls the steps make; a test
# checks the installed versions satisfy them. Every step gets all three: pandas reads and
# writes Parquet through pyarrow. For a run that must not reach PyPI, bake these and
# kfp==2.17.3 into an image and set MLRELAY_PIPELINE_BASE_IMAGE (both installs are then no-ops).
PACKAGES: list[str] = ["pandas>=3,<4", "scikit-learn>=1.9,<2", "pyarrow>=26,<27"]

PIPELINE_NAME = "penguins-training"

report_completion = completion_reporter(BASE_IMAGE)


@dsl.component(base_image=BASE_IMAGE, packages_to_install=PACKAGES)
def preprocess(
    snapshot_manifest_uri: str,
    snapshot_fingerprint: str,
    run_id: str,
    test_fraction: float,
    seed: int,
    train_data: Output[Dataset],
    test_data: Output[Dataset],
) -> None:
    """Verify the snapshot (fingerprint and per-file sha256), clean it, split it by species."""
    import hashlib
    import json
    import posixpath
    from pathlib import Path

    import pandas as pd
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    from sklearn.model_selection import train_test_split

    columns = [
        "species", "island", "bill_length_mm", "bill_depth_mm",
        "flipper_length_mm", "body_mass_g", "sex",
    ]  # fmt: skip

    def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
        if "://" in uri:
            return pafs.FileSystem.from_uri(uri)
        return pafs.LocalFileSystem(), str(Path(uri).resolve())

    def read_bytes(uri: str) -> bytes:
        filesystem, path = resolve(uri)
        with filesystem.open_input_stream(path) as stream:
            return bytes(stream.read())

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")

    manifest = json.loads(read_bytes(snapshot_manifest_uri))
    if manifest.get("fingerprint") != snapshot_fingerprint:
        raise ValueError(
            f"snapshot fingerprint mismatch: manifest {snapshot_manifest_uri} has "
            f"{manifest.get('fingerprint')!r}, pipeline was given {snapshot_fingerprint!r}"
        )
    files = manifest.get("files") or []
    if not files:
        raise ValueError(f"snapshot manifest {snapshot_manifest_uri} lists no files")

    tables = []
    for entry in files:
        # Prefer the absolute URI; fall back to a path relative to the manifest.
        uri = entry.get("uri") or posixpath.join(
            posixpath.dirname(snapshot_manifest_uri), entry["path"]
        )
        data = read_bytes(uri)
        actual = hashlib.sha256(data).hexdigest()
        if actual != entry.get("sha256"):
            raise ValueError(
                f"sha256 checksum mismatch for snapshot file {entry.get('path')!r} ({uri}): "
                f"manifest says {entry.get('sha256')!r}, file has {actual!r}"
            )
        tables.append(pq.read_table(pa.BufferReader(data)))

    table = pa.concat_tables(tables, promote_options="permissive")
    expected_rows = manifest.get("row_count")
    if expected_rows is not None and table.num_rows != expected_rows:
        raise ValueError(
            f"snapshot row count mismatch: manifest says {expected_rows}, "
            f"files hold {table.num_rows}"
        )
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(f"snapshot is missing columns: {missing}")

    frame = table.select(columns).to_pandas()
    raw_rows = len(frame)
    for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    frame = frame.dropna(subset=columns).reset_index(drop=True)
    for name in ("species", "island", "sex"):
        frame[name] = frame[name].astype(str)

    train, test = train_test_split(
        frame, test_size=test_fraction, random_state=seed, stratify=frame["species"]
    )
    train.reset_index(drop=True).to_parquet(train_data.path, index=False)
    test.reset_index(drop=True).to_parquet(test_data.path, index=False)

    common = {
        "run_id": run_id,
        "snapshot_fingerprint": snapshot_fingerprint,
        "raw_rows": raw_rows,
        "clean_rows": len(frame),
        "dropped_rows": raw_rows - len(frame),
    }
    train_data.metadata.update({**common, "row_count": len(train)})
    test_data.metadata.update({**common, "row_count": len(test)})


@dsl.component(base_image=BASE_IMAGE, packages_to_install=PACKAGES)
def train(
    train_data: Input[Dataset],
    n_estimators: int,
    max_depth: int,
    seed: int,
    model: Output[Model],
) -> None:
    """Fit a random forest on numeric features plus one-hot island and sex."""
    import pickle

    import pandas as pd
    import sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    categorical = ["island", "sex"]

    frame = pd.read_parquet(train_data.path)
    estimator = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("numeric", "passthrough", numeric),
                        ("onehot", OneHotEncoder(handle_unknown="ignore"), categorical),
                    ]
                ),
            ),
            (
                "forest",
                RandomForestClassifier(
                    n_estimators=n_estimators, max_depth=max_depth, random_state=seed
                ),
            ),
        ]
    )
    estimator.fit(frame[numeric + categorical], frame["species"])

    with open(model.path, "wb") as handle:
        pickle.dump(estimator, handle)
    model.metadata.update(
        {
            "framework": "scikit-learn",
            "framework_version": sklearn.__version__,
            "serialization": "pickle",
            "estimator": "RandomForestClassifier",
            "features": numeric + categorical,
            "numeric_features": numeric,
            "categorical_features": categorical,
            "target": "species",
            "classes": [str(c) for c in estimator.classes_],
            "n_estimators": n_estimators,
            "max_depth": max_depth,
            "seed": seed,
            "n_train": len(frame),
        }
    )


@dsl.component(base_image=BASE_IMAGE, packages_to_install=PACKAGES)
def evaluate(
    train_data: Input[Dataset],
    test_data: Input[Dataset],
    model: Input[Model],
    metrics: Output[Metrics],
) -> None:
    """Score the model on the test split: accuracy, macro F1, n_train and n_test."""
    import pickle

    import pandas as pd
    import pyarrow.parquet as pq
    from sklearn.metrics import accuracy_score, f1_score

    frame = pd.read_parquet(test_data.path)
    with open(model.path, "rb") as handle:
        estimator = pickle.load(handle)  # noqa: S301 - written by the train step of this run
    predicted = estimator.predict(frame[list(estimator.feature_names_in_)])
    truth = frame["species"]

    metrics.log_metric("accuracy", float(accuracy_score(truth, predicted)))
    metrics.log_metric("f1_macro", float(f1_score(truth, predicted, average="macro")))
    metrics.log_metric("n_train", float(pq.read_metadata(train_data.path).num_rows))
    metrics.log_metric("n_test", float(len(frame)))


@dsl.pipeline(name=PIPELINE_NAME, description="Train and evaluate the penguins classifier.")
def penguins_training(
    snapshot_manifest_uri: str,
    snapshot_fingerprint: str,
    run_id: str,
    test_fraction: float = 0.25,
    n_estimators: int = 100,
    max_depth: int = 6,
    seed: int = 42,
    mlrelay_pipeline: str = "penguins",
    mlrelay_lifecycle_destination: str = "",
) -> None:
    # KFP allows no pipeline outputs from inside an exit handler: the local runner reads the
    # model and metrics from the tasks' outputs instead.
    report = report_completion(
        run_id=run_id, pipeline=mlrelay_pipeline, destination=mlrelay_lifecycle_destination
    )
    with dsl.ExitHandler(report, name="train-and-evaluate"):
        prep = preprocess(
            snapshot_manifest_uri=snapshot_manifest_uri,
            snapshot_fingerprint=snapshot_fingerprint,
            run_id=run_id,
            test_fraction=test_fraction,
            seed=seed,
        )
        fit = train(
            train_data=prep.outputs["train_data"],
            n_estimators=n_estimators,
            max_depth=max_depth,
            seed=seed,
        )
        evaluate(
            train_data=prep.outputs["train_data"],
            test_data=prep.outputs["test_data"],
            model=fit.outputs["model"],
        )
