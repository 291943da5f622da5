"""The Cloud Scheduler jobs the registry asks for: one per schedule of a pipeline or a group.

A job's id derives from its owner and schedule name (`mlrelay_pipeline_<name>_<schedule>`,
`mlrelay_group_<name>_<schedule>`; names hold no `_`, so ids cannot collide), so a changed cron,
zone or body is an update in place: moving a pipeline to a new template touches no job at all
(the trigger reads the template from the registry at each tick). The job publishes a RunRequest
tick to the runs topic: the body carries the cron and zone, from which the trigger derives the
slot of each tick.

Each job carries who manages it, `cli` (`mlrelay schedules apply`) or `terraform` (the module in
infra/, fed by `mlrelay schedules export`), in its Pub/Sub target's `mlrelay_managed_by`
attribute, so neither path changes a job the other made (see `sync.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mlrelay.contracts import RunRequest, ScheduleRef
from mlrelay.registry import Registry, ScheduleSpec
from mlrelay.schedules.members import all_schedules, members_of

MANAGED_PREFIX = "mlrelay_"
TICK_REQUESTED_BY = "cloud-scheduler"

Owner = Literal["cli", "terraform"]
OWNER_ATTRIBUTE = "mlrelay_managed_by"
MANAGED_BY = {"cli": "`mlrelay schedules apply`", "terraform": "Terraform"}


def owner_of(job: JobSpec) -> str:
    """Who manages a found job: its marker; a job from before the marker by its description
    (the export wrote "managed by Terraform", `apply` anything else)."""
    marker = job.attributes.get(OWNER_ATTRIBUTE)
    if marker is not None:
        return marker  # an unknown value is nobody mlrelay knows: never ours
    return "terraform" if "managed by Terraform" in job.description else "cli"


def job_id(kind: Literal["pipeline", "group"], owner: str, schedule: str) -> str:
    return f"{MANAGED_PREFIX}{kind}_{owner}_{schedule}"


def tick_request(owner: str, schedule: ScheduleSpec) -> RunRequest:
    """What each tick of the schedule publishes (the same body every time)."""
    return RunRequest(
        pipeline=owner,
        trigger="schedule",
        requested_by=TICK_REQUESTED_BY,
        schedule=ScheduleRef(name=schedule.name, cron=schedule.cron, time_zone=schedule.time_zone),
    )


@dataclass(frozen=True)
class JobSpec:
    """The parts of a Cloud Scheduler job mlrelay manages (as desired, or as found)."""

    job_id: str
    schedule: str
    time_zone: str
    description: str
    topic_name: str
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    paused: bool = False

    def differences(self, other: JobSpec) -> list[str]:
        """The managed fields (Cloud Scheduler's names) in which `other` differs."""
        fields = {
            "schedule": self.schedule != other.schedule,
            "time_zone": self.time_zone != other.time_zone,
            "description": self.description != other.description,
            "pubsub_target": (self.topic_name, self.data, self.attributes)
            != (other.topic_name, other.data, other.attributes),
        }
        return [name for name, differs in fields.items() if differs]


def desired_jobs(registry: Registry, runs_topic_path: str, owner: Owner = "cli") -> list[JobSpec]:
    """The jobs the registry asks for, marked as `owner`'s."""
    jobs = []
    for owned in all_schedules(registry):
        schedule = owned.schedule
        request = tick_request(owned.owner, schedule)
        members = members_of(registry, owned.owner, schedule)
        runs = "1 run" if len(members) == 1 else f"{len(members)} runs"
        jobs.append(
            JobSpec(
                job_id=job_id(owned.kind, owned.owner, schedule.name),
                schedule=schedule.cron,
                time_zone=schedule.time_zone,
                description=(
                    f"mlrelay: {owned.kind} {owned.owner}, schedule {schedule.name} "
                    f"({runs} per tick); managed by {MANAGED_BY[owner]}"
                ),
                topic_name=runs_topic_path,
                data=request.to_json(),
                attributes={
                    **request.attributes(),
                    "schedule": schedule.name,
                    OWNER_ATTRIBUTE: owner,
                },
                paused=schedule.paused,
            )
        )
    return jobs
