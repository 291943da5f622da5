"""KFP components mlrelay ships for pipelines to use (importing this package imports kfp)."""

from mlrelay.kfp_components.completion import completion_reporter, report_pipeline_completion

__all__ = ["completion_reporter", "report_pipeline_completion"]
