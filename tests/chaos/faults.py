"""What the fault tests watch while they break things: training processes, API answers, job rows.

`TrainerWatch` samples every training process on the machine and counts, per job, how many run
at once (a job run twice concurrently would show 2). `ApiProbe` keeps calling the user API from
a thread and keeps every answer, so an outage's answers can be counted afterwards.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import psutil
from sqlalchemy import select

from app.jobs.tables import Job, JobEvent

# The runner writes each attempt's config under <models>/<job id>/config-attempt-N.json.
CONFIG_OF_JOB = re.compile(r"/(ftjob-[0-9a-f]+)/config-attempt-\d+\.json")


def training_jobs_now() -> Counter[str]:
    """How many training processes run for each job at this moment."""
    running: Counter[str] = Counter()
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or ())
        if "app.training" in command and (found := CONFIG_OF_JOB.search(command)):
            running[found.group(1)] += 1
    return running


class TrainerWatch(threading.Thread):
    """The most training processes seen at once for each job, sampled every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.most: Counter[str] = Counter()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for job_id, count in training_jobs_now().items():
                self.most[job_id] = max(self.most[job_id], count)
            time.sleep(0.2)

    def __enter__(self) -> TrainerWatch:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop_event.set()
        self.join(5)

    def concurrent_runs(self) -> int:
        """Jobs ever seen with more than one training process at once."""
        return sum(1 for count in self.most.values() if count > 1)


class WorkerSupervisor(threading.Thread):
    """What `restart: unless-stopped` does for the workers in docker-compose.yml: an exited one is started again.

    A worker is not expected to exit of a broker or database restart (kombu's Redis transport used to
    kill it: app/core/broker_transport.py), and the restart tests assert that none did; the supervisor
    still restarts one that does, as production's restart policy would, so the rest of the test says
    what else went wrong, and it reports every restart. The thread lives as long as the test session:
    the platform's processes get the parent-death signal (prctl PR_SET_PDEATHSIG), which Linux sends
    when the *thread* that started them ends, so a worker restarted here must not outlive this thread.
    """

    def __init__(self, workers: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.workers = workers
        self._restarts: list[dict[str, Any]] | None = None  # restarting only while a test watches
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            restarts = self._restarts
            if restarts is not None:
                for name, handle in self.workers.items():
                    if handle.process.exited():
                        code, exited = handle.process.returncode(), time.time()
                        handle.ensure_running()
                        restarts.append({"worker": name, "exit_code": code,
                                         "seconds_to_answer_again": round(time.time() - exited, 1)})  # fmt: skip
            time.sleep(0.5)

    @contextmanager
    def watching(self) -> Iterator[list[dict[str, Any]]]:
        """Restart exited workers while the block runs; yields the restarts made."""
        restarts: list[dict[str, Any]] = []
        self._restarts = restarts
        try:
            yield restarts
        finally:
            self._restarts = None
            time.sleep(0.6)  # a restart already under way finishes before the test goes on

    def stop(self) -> None:
        self._stop_event.set()
        self.join(300)


@dataclass
class Answer:
    at: float
    operation: str
    status: int  # 0: no HTTP answer at all (connection refused, timeout)
    retry_after: str | None
    code: str | None


@dataclass
class ApiProbe:
    """Calls the given operations round-robin from a thread until stopped."""

    base_url: str
    key: str
    operations: dict[str, Callable[[httpx.Client], httpx.Response]]
    answers: list[Answer] = field(default_factory=list)
    _stop_event: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _loop(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as http:
            while not self._stop_event.is_set():
                for name, call in self.operations.items():
                    self.answers.append(self._call(http, name, call))
                time.sleep(0.05)

    @staticmethod
    def _call(http: httpx.Client, name: str, call: Callable[[httpx.Client], httpx.Response]) -> Answer:
        try:
            response = call(http)
        except httpx.HTTPError as error:
            return Answer(time.time(), name, 0, None, type(error).__name__)
        code = None
        if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
            code = (response.json().get("error") or {}).get("code")
        return Answer(time.time(), name, response.status_code, response.headers.get("retry-after"), code)

    def __enter__(self) -> ApiProbe:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(35)

    def between(self, start: float, end: float) -> list[Answer]:
        return [answer for answer in self.answers if start <= answer.at <= end]

    @staticmethod
    def tally(answers: list[Answer]) -> dict[str, int]:
        return dict(Counter(str(answer.status) for answer in answers))

    def first_success_after(self, moment: float) -> float | None:
        return next((a.at for a in self.answers if a.at >= moment and 200 <= a.status < 300), None)


async def job_row(sessionmaker: Any, job_id: str) -> Job:
    async with sessionmaker() as session:
        row = await session.get(Job, job_id)
        assert row is not None, job_id
        return row


async def first_step_after(sessionmaker: Any, job_id: str, attempt: int) -> datetime | None:
    """When the given attempt reported its first training step."""
    async with sessionmaker() as session:
        rows = (await session.scalars(
            select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.attempt == attempt, JobEvent.type == "metrics")
            .order_by(JobEvent.id)
        )).all()  # fmt: skip
    return next((row.created_at for row in rows if row.data and "train_loss" in row.data), None)


async def wait_for_step(sessionmaker: Any, job_id: str, step: int, timeout: float = 240) -> int:
    """Block until the job's row reports at least `step`; returns the step seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await job_row(sessionmaker, job_id)
        if row.current_step >= step or row.status in ("succeeded", "failed", "cancelled"):
            return row.current_step
        time.sleep(0.2)
    raise AssertionError(f"{job_id} did not reach step {step} in {timeout}s")
