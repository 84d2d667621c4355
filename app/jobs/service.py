"""Fine-tuning jobs: create (checked, then enqueued after commit), read, control, events, checkpoints."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import Authorizer, Kind, Principal, ResourceCheck, resource_attributes
from app.authz.errors import refused_create
from app.authz.resources import Resources
from app.authz.service import NEW_RESOURCE_ID
from app.catalog import repository as catalog
from app.catalog.tables import CatalogEntry
from app.core import ids
from app.core.celery_app import TASK_RUN_FINETUNE, TASK_VALIDATE_JOB
from app.core.database import after_commit, utcnow
from app.core.errors import BadRequest, Conflict, NotFound
from app.core.outbox import enqueue
from app.files import repository as files
from app.files.tables import File
from app.jobs import events, repository
from app.jobs.events import NewEvent
from app.jobs.schemas import TERMINAL_STATUSES, JobCreate, MetadataFilter, fine_tuned_model_name, shown_status
from app.jobs.tables import Checkpoint, Job, JobEvent
from app.training.hyperparams import resolve_hyperparameters
from app.users import repository as users
from app.users.quotas import check_concurrent_jobs

FORMAT_FOR_METHOD = {"supervised": "chat", "dpo": "preference"}
# Hyperparameters that choose the training recipe rather than tune it.
RECIPE_FIELDS = ("fine_tune_type", "quantization")
CHARS_PER_TOKEN_GUESS = 4


def recipe_of(hyperparameters: dict[str, Any]) -> tuple[str, str | None]:
    quantization = hyperparameters.get("quantization")
    return hyperparameters.get("fine_tune_type", "lora"), None if quantization in (None, "none") else quantization


def tunable(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in hyperparameters.items() if key not in RECIPE_FIELDS}


class JobStopping(Conflict):
    """The worker is still saving the checkpoint a stop asked for; the SDKs retry this one by themselves."""

    code = "job_stopping"
    retry = True


def _usable_file(row: File | None, usable: bool, file_id: str, param: str, method: str) -> File:
    # `use` (policies/resources/file.yaml): the owner's files and, as on OpenAI, those of the organization.
    if row is None or not usable:
        raise NotFound(f"No such file: '{file_id}'", param=param, code="file_not_found")
    if row.purpose != "fine-tune":
        raise BadRequest(f"File '{file_id}' has purpose '{row.purpose}', not 'fine-tune'.", param=param)
    if row.status != "processed":
        raise BadRequest(f"File '{file_id}' is not processed (status '{row.status}').", param=param,
                         code="file_not_ready")  # fmt: skip
    expected = FORMAT_FOR_METHOD[method]
    if row.data_format != expected:
        raise BadRequest(
            f"File '{file_id}' holds {row.data_format} examples; method '{method}' needs {expected} examples.",
            param=param,
            code="invalid_file_format",
        )
    return row


async def _decide(
    authorizer: Authorizer, principal: Principal, rows: dict[str, File | None], creating: ResourceCheck | None
) -> tuple[bool, dict[str, bool]]:
    """One Cerbos call for the job's `create` (when creating) and `use` of each file found."""
    found = {param: row for param, row in rows.items() if row is not None}
    checks = [ResourceCheck(str(Kind.FILE), row.id, resource_attributes(row), ("use",)) for row in found.values()]
    answers = await authorizer.check_all(principal, [*checks, *([creating] if creating else [])])
    readable = {param: bool(answer) for param, answer in zip(found, answers, strict=False)}
    return (bool(answers[-1]) if creating else True), readable


async def _usable_model(session: AsyncSession, model: str) -> CatalogEntry:
    entry = await catalog.get(session, model)
    if entry is None:
        raise NotFound(f"The model '{model}' does not exist in the catalog.", param="model", code="model_not_found")
    if not entry.allowed:
        raise BadRequest(f"The model '{model}' is not available for fine-tuning.", param="model",
                         code="model_not_available")  # fmt: skip
    return entry


def _check_hyperparameters(body: JobCreate, training: File, entry: CatalogEntry) -> dict[str, Any]:
    """Validate the request's values now (400 naming the field); the final resolution uses real token counts."""
    requested = body.requested_hyperparameters()
    fine_tune_type, quantization = recipe_of(requested)
    examples = int(training.statistics.get("examples", 1)) or 1
    tokens_guess = max(examples, int(training.statistics.get("characters", 0)) // CHARS_PER_TOKEN_GUESS)
    try:
        resolve_hyperparameters(
            tunable(requested), examples, tokens_guess, body.method_type(), fine_tune_type, entry.max_seq_length
        )
    except ValueError as error:
        field = str(error).split(":", 1)[0]
        raise BadRequest(str(error), param=f"{body.hyperparameters_param()}.{field}",
                         code="invalid_hyperparameters") from None  # fmt: skip
    if quantization == "qlora" and fine_tune_type != "lora":
        param = f"{body.hyperparameters_param()}.quantization"
        raise BadRequest(
            "quantization 'qlora' needs fine_tune_type 'lora'.", param=param, code="invalid_hyperparameters"
        )
    return requested


def _check_example_count(training: File, minimum: int) -> None:
    """OpenAI's rule, checked at job creation: a training file holds at least `minimum` examples."""
    examples = int(training.statistics.get("examples", 0))
    if examples < minimum:
        raise BadRequest(
            f"Training file '{training.id}' has {examples} example(s); a fine-tuning job needs at least {minimum}.",
            param="training_file",
            code="invalid_n_examples",
        )


async def check_request(
    session: AsyncSession,
    authorizer: Authorizer,
    principal: Principal,
    body: JobCreate,
    min_examples: int,
    creating: ResourceCheck | None = None,
) -> tuple[CatalogEntry, File, File | None, dict[str, Any]]:
    """Every check a create (or an estimate) makes before anything is written.

    The decisions (the new job's `create` when `creating`, `use` of each file) go to Cerbos in one
    call; the errors keep their order: the job, then the request, the model, each file.
    """
    named = {"training_file": body.training_file}
    if body.validation_file:
        named["validation_file"] = body.validation_file
    rows = {param: await files.get_live(session, file_id) for param, file_id in named.items()}
    may_create, readable = await _decide(authorizer, principal, rows, creating)
    if creating is not None and not may_create:
        raise refused_create(Kind.FINE_TUNING_JOB)
    if body.integrations:
        raise BadRequest("Integrations are not supported on this platform.", param="integrations")
    entry = await _usable_model(session, body.model)
    method = body.method_type()
    usable = {param: _usable_file(rows[param], readable.get(param, False), file_id, param, method)
              for param, file_id in named.items()}  # fmt: skip
    training, validation = usable["training_file"], usable.get("validation_file")
    _check_example_count(training, min_examples)
    requested = _check_hyperparameters(body, training, entry)
    return entry, training, validation, requested


async def create(resources: Resources, session: AsyncSession, principal: Principal, body: JobCreate) -> Job:
    attrs = {"owner_id": principal.id, "organization_id": principal.organization_id}
    # Asked of no id: a refused create is a 403 naming none (no job exists; the id is drawn once allowed).
    creating = ResourceCheck(str(Kind.FINE_TUNING_JOB), NEW_RESOURCE_ID, attrs, ("create",))
    _, training, validation, requested = await check_request(
        session, resources.authorizer, principal, body, resources.settings.min_training_examples, creating
    )
    job_id = ids.job_id()
    await check_concurrent_jobs(session, principal)
    job = Job(
        id=job_id,
        owner_id=principal.id,
        organization_id=principal.organization_id,
        model=body.model,
        training_file=training.id,
        validation_file=validation.id if validation else None,
        method=body.method_type(),
        hyperparameters=requested,
        suffix=body.suffix,
        seed=body.seed if body.seed is not None else secrets.randbelow(2**31),
        metadata_=body.metadata,
        status="validating_files",
        enqueued_at=utcnow(),
    )
    await repository.add(session, job)
    event = repository.add_event(session, job.id, NewEvent(f"Validating training file: {training.id}"))
    if validation:
        repository.add_event(session, job.id, NewEvent(f"Validating validation file: {validation.id}"))
    enqueue(session, resources.sessionmaker, TASK_VALIDATE_JOB, [job.id])
    await session.flush()
    after_commit(session, lambda: events.publish(resources.redis, event))
    return job


async def get(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, job_id: str, action: str = "read"
) -> Job:
    row = await repository.get(session, job_id)
    return await authorizer.require_row(principal, Kind.FINE_TUNING_JOB, job_id, row, action)


async def read(session: AsyncSession, authorizer: Authorizer, principal: Principal, job_id: str) -> Any:
    """`get` for a response only: the read-only row (`repository.JOB_ROWS.row`), one statement, no transaction."""
    row = await repository.read(session, job_id)
    return await authorizer.require_row(principal, Kind.FINE_TUNING_JOB, job_id, row, "read")


async def list_visible(
    session: AsyncSession,
    authorizer: Authorizer,
    principal: Principal,
    after: str | None,
    limit: int,
    metadata: MetadataFilter,
) -> tuple[list[Any], bool]:
    visible = await authorizer.list_filter(principal, Kind.FINE_TUNING_JOB, "read", Job)
    return await repository.visible_page(session, visible, metadata, after, limit)


async def transition(
    resources: Resources,
    session: AsyncSession,
    job: Job,
    values: dict[str, Any],
    allowed_from: tuple[str, ...],
    message: str,
) -> Job:
    """Change a job's row only if it is still in one of `allowed_from` (a worker may be changing it too)."""
    if not await repository.transition(session, job, allowed_from, values):
        raise Conflict(f"Job '{job.id}' is {job.status}; this action is not possible now.", param="fine_tuning_job_id")
    event = repository.add_event(session, job.id, NewEvent(message), attempt=job.attempt)
    await session.flush()
    after_commit(session, lambda: events.publish(resources.redis, event))
    return job


async def cancel(resources: Resources, session: AsyncSession, principal: Principal, job_id: str) -> Job:
    return await cancel_job(resources, session, await get(session, resources.authorizer, principal, job_id, "cancel"))


async def cancel_job(resources: Resources, session: AsyncSession, job: Job, *, again: bool = True) -> Job:
    """Cancel a job the caller may cancel (its owner, or the admin API's job control): `cancelled` at once.

    A running job keeps its worker until the trainer has saved a checkpoint; the worker then writes
    the row (`shown_status` answers `cancelled` meanwhile). `again`: the row changed under us once.
    """
    status = shown_status(job)
    if status in TERMINAL_STATUSES:
        raise Conflict(f"Job '{job.id}' has already {status}; it cannot be cancelled.", param="fine_tuning_job_id")
    try:
        if job.status == "running":
            # The worker turns this into SIGTERM; the trainer saves a checkpoint and the job ends cancelled.
            return await transition(resources, session, job, {"cancel_requested": True}, ("running",),
                                     "Cancellation requested")  # fmt: skip
        values = {"status": "cancelled", "cancel_requested": True, "finished_at": utcnow()}
        return await transition(resources, session, job, values, ("validating_files", "queued", "paused"),
                                 "Job cancelled")  # fmt: skip
    except Conflict:
        if again:  # a worker moved it meanwhile (claimed, or finished its pause): decide on what it is now
            return await cancel_job(resources, session, job, again=False)
        raise


async def pause(resources: Resources, session: AsyncSession, principal: Principal, job_id: str) -> Job:
    """`paused` at once; a running job's worker stops the trainer at a checkpoint and then writes the row."""
    job = await get(session, resources.authorizer, principal, job_id, "pause")
    status = shown_status(job)
    if status == "running":
        return await transition(resources, session, job, {"pause_requested": True}, ("running",), "Pause requested")
    if status == "queued":
        return await transition(resources, session, job, {"status": "paused"}, ("queued",), "Job paused")
    raise Conflict(f"Job '{job_id}' is {status}; only a queued or running job can be paused.",
                   param="fine_tuning_job_id")  # fmt: skip


async def resume(resources: Resources, session: AsyncSession, principal: Principal, job_id: str) -> Job:
    job = await get(session, resources.authorizer, principal, job_id, "resume")
    if job.status == "running" and shown_status(job) == "paused":
        # Another attempt may not start while this one still writes its checkpoint.
        raise JobStopping(f"Job '{job_id}' is still saving the checkpoint it pauses at; resume it in a few seconds.",
                          param="fine_tuning_job_id", headers={"Retry-After": "2"})  # fmt: skip
    if job.status != "paused":
        raise Conflict(f"Job '{job_id}' is {shown_status(job)}; only a paused job can be resumed.",
                       param="fine_tuning_job_id")  # fmt: skip
    values = {"status": "queued", "pause_requested": False, "enqueued_at": utcnow()}
    job = await transition(
        resources, session, job, values, ("paused",), "Job resumed; continuing from the latest checkpoint"
    )
    enqueue(session, resources.sessionmaker, TASK_RUN_FINETUNE, [job.id], priority=job.priority)
    await session.flush()
    return job


async def list_events(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, job_id: str, after: str | None, limit: int
) -> tuple[list[Any], bool]:
    await read(session, authorizer, principal, job_id)
    return await repository.events_page(session, job_id, after, limit)


async def events_since(session: AsyncSession, job_id: str, after: str | None) -> Sequence[JobEvent]:
    return await repository.events_since(session, job_id, after)


async def status_of(session: AsyncSession, job_id: str) -> str:
    """A job's status for a stream; a job gone meanwhile ends its stream as failed."""
    return await repository.status_of(session, job_id) or "failed"


async def model_name(session: AsyncSession, job: Job) -> str:
    """The fine-tuned model a job names: its own once it succeeded, before that the name it will have."""
    if job.fine_tuned_model:
        return job.fine_tuned_model
    organization = await users.organization_name(session, job.organization_id)
    return fine_tuned_model_name(job, organization or job.organization_id)


async def list_checkpoints(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, job_id: str, after: str | None, limit: int
) -> tuple[str, Sequence[Checkpoint], bool]:
    """The model name the checkpoints carry, and a page of them."""
    job = await get(session, authorizer, principal, job_id)
    rows, has_more = await repository.checkpoints_page(session, job_id, after, limit)
    return await model_name(session, job), rows, has_more


async def get_checkpoint(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, job_id: str, checkpoint_id: str
) -> tuple[Job, Checkpoint]:
    job = await get(session, authorizer, principal, job_id)
    checkpoint = await repository.get_checkpoint(session, job_id, checkpoint_id)
    # The checkpoint policy decides downloads (the job policy has no such action), on its job's owner.
    checkpoint = await authorizer.require_row(
        principal, Kind.CHECKPOINT, checkpoint_id, checkpoint, "download", attrs_from=job
    )
    return job, checkpoint
