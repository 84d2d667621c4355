"""The GPU worker's side of a job: `run_job(context, job_id)` claims it, runs one attempt, records how it ended.

run.py        claim, load, prepare the attempt, then supervise and conclude
state.py      RunState; decode(line) -> the typed messages of app/training/callbacks.py
supervise.py  the training command, its process, the relay of its messages, the control loop
progress.py   steps, evaluations, checkpoints; what an earlier attempt's journal holds unrecorded
outcome.py    success (weights, result file, registry, model row), stop, retry or failure
record.py     the worker's fenced writes of the job row and its events (and the re-queue)
shutdown.py   a warm shutdown of the worker stops the trainer at a checkpoint and hands the job back
mlflow_run.py one MLflow run per job: params, metrics, artifacts, registry version
"""

from app.jobs.worker.run import run_job

__all__ = ["run_job"]
