"""Keep Cloud Scheduler in step with the registry: plan the changes, then apply them.

`plan_changes` is pure: the jobs the registry asks for against the managed jobs found (ids with
the `mlrelay_` prefix; other jobs in the location are never touched). `apply_changes` carries a
plan out through the `SchedulerJobs` port and is idempotent: a job created meanwhile (409) is
updated instead, one already gone (404) needs no delete, one missing on update is created.

One owner per job: a plan changes only the jobs whose marker (`jobs.owner_of`) names the
planner's owner. A job another owner made (Terraform, by default) is neither updated nor deleted
nor created over: `held_jobs` reports it, with what the registry would change in it. `adopt`
takes such jobs over (after `terraform state rm`, say).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import structlog

from mlrelay_tools.schedules.jobs import (
    MANAGED_BY,
    MANAGED_PREFIX,
    OWNER_ATTRIBUTE,
    JobSpec,
    Owner,
    owner_of,
)

log = structlog.get_logger()

Action = Literal["create", "update", "pause", "resume", "delete"]


class SchedulerJobs(Protocol):
    """The narrow interface to Cloud Scheduler in one project and location."""

    def list_jobs(self) -> list[JobSpec]: ...
    def create(self, job: JobSpec) -> None:
        """Raises `JobExists` when a job of that id exists."""
        ...

    def update(self, job: JobSpec, fields: list[str]) -> None:
        """Raises `JobMissing` when there is no such job."""
        ...

    def pause(self, job_id: str) -> None: ...
    def resume(self, job_id: str) -> None: ...
    def delete(self, job_id: str) -> None:
        """Raises `JobMissing` when there is no such job."""
        ...


class JobExists(Exception):
    pass


class JobMissing(Exception):
    pass


@dataclass(frozen=True)
class Change:
    action: Action
    job_id: str
    fields: list[str] = field(default_factory=list)
    desired: JobSpec | None = None

    def describe(self) -> str:
        text = f"{self.action:<7} {self.job_id}"
        if self.fields:
            text += f"  ({', '.join(self.fields)})"
        if self.desired is not None and self.action == "create":
            text += f"  [{self.desired.schedule} {self.desired.time_zone}]"
        return text


@dataclass(frozen=True)
class HeldJob:
    """An mlrelay job another owner manages: reported, never changed."""

    job_id: str
    owner: str
    differs: list[str]  # what the registry would change in it; ["delete"]: it asks for none

    def describe(self) -> str:
        by = MANAGED_BY.get(self.owner, repr(self.owner))
        text = f"held    {self.job_id}  (managed by {by}"
        if self.differs:
            return text + f"; the registry differs: {', '.join(self.differs)})"
        return text + "; in step with the registry)"


def plan_changes(
    desired: list[JobSpec], found: list[JobSpec], *, owner: Owner = "cli", adopt: bool = False
) -> list[Change]:
    """What to do so `owner`'s jobs are exactly `desired`; empty when already in step. Jobs
    another owner manages are left out (see `held_jobs`), unless `adopt` takes them over."""
    managed = [job for job in found if job.job_id.startswith(MANAGED_PREFIX)]
    existing = {job.job_id: job for job in managed if adopt or owner_of(job) == owner}
    held = {job.job_id for job in managed} - set(existing)
    changes: list[Change] = []
    for job in sorted(desired, key=lambda j: j.job_id):
        if job.job_id in held:
            continue
        current = existing.pop(job.job_id, None)
        if current is None:
            changes.append(Change("create", job.job_id, desired=job))
            if job.paused:
                changes.append(Change("pause", job.job_id, desired=job))
            continue
        differing = job.differences(current)
        if differing:
            changes.append(Change("update", job.job_id, differing, job))
        if job.paused and not current.paused:
            changes.append(Change("pause", job.job_id, desired=job))
        elif current.paused and not job.paused:
            changes.append(Change("resume", job.job_id, desired=job))
    changes += [Change("delete", job_id) for job_id in sorted(existing)]
    return changes


def held_jobs(
    desired: list[JobSpec], found: list[JobSpec], *, owner: Owner = "cli"
) -> list[HeldJob]:
    """The mlrelay jobs another owner manages, and how each differs from the registry (the
    owner's marker and wording aside)."""
    wanted = {job.job_id: job for job in desired}
    held = []
    for job in sorted(found, key=lambda j: j.job_id):
        if not job.job_id.startswith(MANAGED_PREFIX) or owner_of(job) == owner:
            continue
        asked = wanted.get(job.job_id)
        if asked is None:
            held.append(HeldJob(job.job_id, owner_of(job), ["delete"]))
            continue
        differs = _unmarked(asked, job.description).differences(_unmarked(job, job.description))
        if asked.paused != job.paused:
            differs.append("pause" if asked.paused else "resume")
        held.append(HeldJob(job.job_id, owner_of(job), differs))
    return held


def _unmarked(job: JobSpec, description: str) -> JobSpec:
    attributes = {k: v for k, v in job.attributes.items() if k != OWNER_ATTRIBUTE}
    return replace(job, attributes=attributes, description=description)


def apply_changes(jobs: SchedulerJobs, changes: list[Change]) -> list[Change]:
    """Carry out a plan; returns what was done (a retried or answered-for-us step included)."""
    done: list[Change] = []
    for change in changes:
        desired = change.desired
        if change.action == "create":
            assert desired is not None
            try:
                jobs.create(desired)
            except JobExists:  # created since the plan was made: make it what we want...
                if not _ours(jobs, desired):  # ...unless its maker manages it
                    log.warning("scheduler_job_held", job_id=change.job_id)
                    continue
                jobs.update(desired, ["schedule", "time_zone", "description", "pubsub_target"])
        elif change.action == "update":
            assert desired is not None
            try:
                jobs.update(desired, change.fields)
            except JobMissing:  # deleted since the plan was made
                jobs.create(desired)
        elif change.action == "pause":
            jobs.pause(change.job_id)
        elif change.action == "resume":
            jobs.resume(change.job_id)
        else:
            try:
                jobs.delete(change.job_id)
            except JobMissing:
                log.info("scheduler_job_already_gone", job_id=change.job_id)
        log.info("scheduler_job_changed", action=change.action, job_id=change.job_id)
        done.append(change)
    return done


def _ours(jobs: SchedulerJobs, desired: JobSpec) -> bool:
    """Whether the job of `desired`'s id, found after a 409, is the same owner's."""
    found = [job for job in jobs.list_jobs() if job.job_id == desired.job_id]
    return not found or owner_of(found[0]) == owner_of(desired)
