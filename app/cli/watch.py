"""`finetune jobs watch`: a live view of a job fed by its event stream; the exit code is its final status."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from app.cli.client import path_segment
from app.cli.context import CliState
from app.cli.errors import ConnectionFailed, ExitCode
from app.cli.render import duration, emit_json_line, timestamp
from app.cli.sse import JobEvent, JobEventStream, StreamDone

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60
STATUS_POLL_SECONDS = 5.0
MESSAGES_SHOWN = 6
STATUS_STYLES = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "paused": "yellow", "running": "cyan"}
EXIT_CODES = {"succeeded": ExitCode.OK, "failed": ExitCode.JOB_FAILED, "cancelled": ExitCode.JOB_CANCELLED}
VALID_LOSS_KEYS = ("valid_loss", "full_valid_loss", "eval_loss")


def exit_code_for(status: str) -> int:
    """0 succeeded, 1 failed, 2 cancelled; 3 for a job that stopped without ending (paused)."""
    return int(EXIT_CODES.get(status, ExitCode.JOB_PAUSED))


def sparkline(values: list[float], width: int = SPARK_WIDTH) -> str:
    """Unicode blocks, lowest value to highest; longer series are averaged into `width` buckets."""
    if not values:
        return ""
    if len(values) > width:
        values = [_mean(values[i * len(values) // width : (i + 1) * len(values) // width]) for i in range(width)]
    low, high = min(values), max(values)
    if high == low:
        return SPARK_BLOCKS[len(SPARK_BLOCKS) // 2] * len(values)
    top = len(SPARK_BLOCKS) - 1
    return "".join(SPARK_BLOCKS[round((value - low) / (high - low) * top)] for value in values)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _number(data: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _latest(new: float | None, old: float | None) -> float | None:
    return old if new is None else new


@dataclass
class WatchState:
    """What the view shows, updated one event at a time."""

    job_id: str
    model: str = ""
    status: str = "queued"
    step: int = 0
    total_steps: int | None = None
    epoch: float | None = None
    train_loss: float | None = None
    best_loss: float | None = None
    best_step: int | None = None
    valid_loss: float | None = None
    tokens_per_second: float | None = None
    learning_rate: float | None = None
    eta_seconds: float | None = None
    eta_seen_at: float | None = None
    losses: list[float] = field(default_factory=list)
    messages: deque[tuple[int, str, str]] = field(default_factory=lambda: deque(maxlen=MESSAGES_SHOWN))
    notice: str | None = None
    events: int = 0
    _loss_steps: set[int] = field(default_factory=set)

    @classmethod
    def of_job(cls, job: dict[str, Any]) -> WatchState:
        progress = job.get("progress") or {}
        return cls(job_id=job["id"], model=str(job.get("model", "")), status=str(job.get("status", "queued")),
                   step=int(progress.get("step") or 0), total_steps=progress.get("total_steps"))  # fmt: skip

    def apply(self, event: dict[str, Any]) -> None:
        self.events += 1
        data = event.get("data") or {}
        if isinstance(data.get("status"), str):
            self.status = data["status"]
        if isinstance(data.get("total_steps"), int):
            self.total_steps = data["total_steps"]
        self._apply_metrics(data, event)
        if event.get("type") != "metrics" and event.get("message"):
            self.messages.append((int(event.get("created_at") or 0), str(event.get("level", "info")), event["message"]))

    def _apply_metrics(self, data: dict[str, Any], event: dict[str, Any]) -> None:
        step = data.get("step")
        if isinstance(step, int):
            self.step = max(self.step, step)
        loss = _number(data, "train_loss", "loss")
        if loss is not None and isinstance(step, int) and step not in self._loss_steps:
            self._loss_steps.add(step)
            self.train_loss = loss
            self.losses.append(loss)
            if self.best_loss is None or loss < self.best_loss:
                self.best_loss, self.best_step = loss, step
        self.valid_loss = _latest(_number(data, *VALID_LOSS_KEYS), self.valid_loss)
        self.tokens_per_second = _latest(_number(data, "tokens_per_second"), self.tokens_per_second)
        self.learning_rate = _latest(_number(data, "learning_rate"), self.learning_rate)
        self.epoch = _latest(_number(data, "epoch"), self.epoch)
        eta = _number(data, "eta_seconds")
        if eta is not None:
            self.eta_seconds, self.eta_seen_at = eta, float(event.get("created_at") or time.time())

    def eta(self, now: float) -> float | None:
        if self.status != "running" or self.eta_seconds is None or self.eta_seen_at is None:
            return None
        return max(0.0, self.eta_seconds - (now - self.eta_seen_at))


def render(state: WatchState, now: float | None = None) -> RenderableType:
    now = time.time() if now is None else now
    style = STATUS_STYLES.get(state.status, "white")
    header = Text.from_markup(f"[bold]{escape(state.job_id)}[/]  {escape(state.model)}  [{style}]{state.status}[/]")
    total = state.total_steps or 0
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=total or None, completed=min(state.step, total) if total else 0, width=40),
        f"step {state.step}/{total or '?'}" + (f"  {100 * state.step // total}%" if total else ""),
        f"ETA {duration(state.eta(now))}",
    )
    figures = Table.grid(padding=(0, 3))
    figures.add_row(
        f"loss {_fmt(state.train_loss)}",
        f"best {_fmt(state.best_loss)}" + (f" (step {state.best_step})" if state.best_step is not None else ""),
        f"valid {_fmt(state.valid_loss)}",
        f"tokens/s {_fmt(state.tokens_per_second, '.0f')}",
        f"epoch {_fmt(state.epoch, '.2f')}",
        f"lr {_fmt(state.learning_rate, '.2e')}",
    )
    parts: list[RenderableType] = [header, bar, figures, Text(f"loss {sparkline(state.losses) or '-'}")]
    for created, level, message in state.messages:
        colour = "yellow" if level == "warn" else "red" if level == "error" else "dim"
        parts.append(Text.from_markup(f"[{colour}]{timestamp(created)}[/] {escape(message)}"))
    if state.notice:
        parts.append(Text(state.notice, style="yellow"))
    return Group(*parts)


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


@dataclass
class _Watch:
    state: CliState
    view: WatchState
    job_id: str
    max_retries: int
    live: Live | None = None
    last_poll: float = field(default_factory=time.monotonic)
    # The live display renders from its own thread while events arrive on this one.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def render_view(self) -> RenderableType:
        with self.lock:
            return render(self.view)

    def run(self) -> str:
        """Feed the view until the stream says done, or the job is found paused. Returns the status."""
        client = self.state.client()
        stream = JobEventStream(client, self.job_id, max_retries=self.max_retries, on_retry=self._retrying)
        for item in stream:
            if isinstance(item, StreamDone):
                self._catch_up(stream)
                return item.status
            if isinstance(item, JobEvent):
                self.show_event(item.payload)
            self.view.notice = None
            if self._paused():
                return "paused"
        return self.view.status

    def show_event(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.view.apply(event)
        if self.state.json:
            emit_json_line(event)
        elif self.live is None and event.get("type") != "metrics":
            self.state.out.print(f"{timestamp(event.get('created_at'))} {escape(str(event.get('message', '')))}")

    def _catch_up(self, stream: JobEventStream) -> None:
        """Show recorded events the stream skipped.

        The API's stream compares ids to skip what it already sent, but ids of one
        millisecond sort in random order, so an event can be passed over (seen with
        the last two events of a job, written together). The record is complete.
        """
        missed: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = self.state.client().get(f"{self._job_path}/events", {"limit": 1000, "after": after})
            missed += [event for event in page["data"] if stream.mark_seen(str(event["id"]))]
            if not page.get("has_more") or not page["data"]:
                break
            after = page["data"][-1]["id"]
        for event in sorted(missed, key=lambda event: str(event["id"])):
            self.show_event(event)

    @property
    def _job_path(self) -> str:
        return f"/v1/fine_tuning/jobs/{path_segment(self.job_id)}"

    def replay_history(self) -> None:
        """A paused job's stream would wait for it forever: show its recorded events instead."""
        page = self.state.client().get(f"{self._job_path}/events", {"limit": 1000})
        for event in reversed(page["data"]):
            self.show_event(event)

    def _paused(self) -> bool:
        """The stream stays open while a job is paused, so the status is polled now and then."""
        if time.monotonic() - self.last_poll < STATUS_POLL_SECONDS:
            return False
        self.last_poll = time.monotonic()
        try:
            job = self.state.client().get(self._job_path)
        except ConnectionFailed:
            return False  # the stream notices a lost server on its own and reconnects
        self.view.status = job["status"]
        return _settled_pause(job)

    def _retrying(self, attempt: int, delay: float, reason: str) -> None:
        self.view.notice = f"connection lost ({reason}); reconnecting in {delay:.1f}s (attempt {attempt})"
        if self.live is None:
            self.state.err.print(escape(self.view.notice))


def _settled_pause(job: dict[str, Any]) -> bool:
    """Paused, and its checkpoint saved: a job asked to pause answers `paused` while its worker still stops
    (`progress.stopping`), and a resume before then is refused (409 job_stopping)."""
    return bool(job["status"] == "paused" and not (job.get("progress") or {}).get("stopping"))


def watch_job(state: CliState, job_id: str, *, max_retries: int = 20, live: bool | None = None) -> int:
    """Follow a job to its end (or to a pause) and return the exit code for its final status."""
    client = state.client()
    job_path = f"/v1/fine_tuning/jobs/{path_segment(job_id)}"
    job = client.get(job_path)
    view = WatchState.of_job(job)
    watcher = _Watch(state, view, job["id"], max_retries)
    use_live = (state.out.is_terminal if live is None else live) and not state.json
    if _settled_pause(job):
        watcher.replay_history()
        status = "paused"
    elif use_live:
        # Rendered afresh at each refresh, so the ETA counts down between events too.
        with Live(console=state.out, refresh_per_second=4, get_renderable=watcher.render_view) as watcher.live:
            status = watcher.run()
            view.status = status
    else:
        status = watcher.run()
    final = client.get(job_path)
    view.status = final["status"] if status != "paused" else status
    _report(state, view, final, live_shown=use_live)
    return exit_code_for(view.status)


def _report(state: CliState, view: WatchState, job: dict[str, Any], *, live_shown: bool) -> None:
    if state.json:
        emit_json_line(job)
        return
    if not live_shown:
        state.out.print(render(view))
    elif not state.out.is_terminal:
        state.out.line()  # off a terminal the live view's single render ends without a line break
    style = STATUS_STYLES.get(view.status, "white")
    state.out.print(f"Job {job['id']} [{style}]{view.status}[/].")
    if job.get("error"):
        error = job["error"]
        param = f" (param: {error['param']})" if error.get("param") else ""
        state.out.print(f"[red]{escape(str(error.get('code')))}[/]: {escape(str(error.get('message')))}{escape(param)}")
    if view.status == "succeeded" and job.get("fine_tuned_model"):
        name = job["fine_tuned_model"]
        state.out.print(f"Fine-tuned model: [bold]{escape(name)}[/]")
        state.out.print(f"Download it: finetune models download {escape(name)} DIR")
    if view.status == "paused":
        state.out.print(f"Resume it with: finetune jobs resume {job['id']}")
