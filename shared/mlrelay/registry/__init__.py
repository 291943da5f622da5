"""The pipeline registry: one YAML file listing every pipeline mlrelay may run.

`specs` holds the typed specs, `backends` the options of each pipeline backend, `expectations`
the checks on a snapshot's data, `checks` the cross-field checks, `loading` the YAML loading with
every problem's file, line and field.
"""

from mlrelay.registry.expectations import ExpectationSpec
from mlrelay.registry.loading import RegistryError, RegistryProblem, load_registry, parse_registry
from mlrelay.registry.specs import (
    ActionsSpec,
    DeadlineSpec,
    GateSpec,
    GroupMember,
    GroupSpec,
    NotifySpec,
    PipelineSpec,
    Registry,
    ScheduleSpec,
    SourceSpec,
    WatchSpec,
    resolve_parameters,
)

__all__ = [
    "ActionsSpec",
    "DeadlineSpec",
    "ExpectationSpec",
    "GateSpec",
    "GroupMember",
    "GroupSpec",
    "NotifySpec",
    "PipelineSpec",
    "Registry",
    "RegistryError",
    "RegistryProblem",
    "ScheduleSpec",
    "SourceSpec",
    "WatchSpec",
    "load_registry",
    "parse_registry",
    "resolve_parameters",
]
