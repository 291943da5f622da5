"""Compile the penguins pipeline to ``penguins_pipeline.yaml`` (next to this file).

Usage, from the repo root::

    python pipelines/penguins/compile.py            # (re)write the committed YAML
    python pipelines/penguins/compile.py --check    # exit 1 if the committed YAML is stale
"""

import argparse
import difflib
import importlib.util
import sys
import tempfile
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
PIPELINE_FILE = HERE / "pipeline.py"
TEMPLATE_FILE = HERE / "penguins_pipeline.yaml"


def _load_pipeline_module(pipeline_file: Path = PIPELINE_FILE) -> ModuleType:
    spec = importlib.util.spec_from_file_location("mlrelay_penguins_pipeline", pipeline_file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {pipeline_file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compile_pipeline(output: Path, pipeline_file: Path = PIPELINE_FILE) -> None:
    """Compile the pipeline definition (``pipeline_file``) to ``output`` (a YAML file).

    Raises SystemExit, writing nothing, when a component imports something its image and its
    install list do not provide (it would fail on Vertex AI or a KFP host, not locally)."""
    import yaml
    from kfp import compiler

    from mlrelay.kfp_components.component_imports import import_gaps

    module = _load_pipeline_module(pipeline_file)
    with tempfile.TemporaryDirectory(prefix="mlrelay-compile-") as tmp:
        fresh = Path(tmp) / output.name
        compiler.Compiler().compile(pipeline_func=module.penguins_training, package_path=str(fresh))
        gaps = import_gaps(yaml.safe_load(fresh.read_text()))
        if gaps:
            raise SystemExit("not written: " + "; ".join(gaps))
        output.write_text(fresh.read_text())


def check(template: Path = TEMPLATE_FILE) -> list[str]:
    """Return a unified diff between ``template`` and a fresh compile; empty means up to date."""
    with tempfile.TemporaryDirectory(prefix="mlrelay-compile-") as tmp:
        fresh = Path(tmp) / template.name
        compile_pipeline(fresh)
        new = fresh.read_text().splitlines(keepends=True)
    old = template.read_text().splitlines(keepends=True) if template.exists() else []
    if old == new:
        return []
    return list(difflib.unified_diff(old, new, str(template), "fresh compile"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="compile to a temp file and fail if it differs from the committed YAML",
    )
    parser.add_argument("--output", type=Path, default=TEMPLATE_FILE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.check:
        diff = check(args.output)
        if diff:
            print(
                f"{args.output} is out of date with {PIPELINE_FILE.name}; "
                f"run `python pipelines/penguins/compile.py` and commit the result.",
                file=sys.stderr,
            )
            sys.stderr.writelines(diff[:60])
            return 1
        print(f"{args.output} is up to date.")
        return 0

    compile_pipeline(args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
