"""The client's parts on their own: multipart body, SSE parsing, the watch view, config precedence."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator, Iterator
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from app.cli import config
from app.cli.main import app
from app.cli.multipart import CHUNK_BYTES, MultipartUpload
from app.cli.sse import SseMessage, backoff_seconds, parse_sse
from app.cli.watch import WatchState, exit_code_for, render, sparkline
from app.files.upload import receive_upload


async def _as_async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_multipart_body_streams_and_parses_with_the_server_parser(tmp_path: Path) -> None:
    source = tmp_path / 'we"ird\nname.jsonl'
    source.write_bytes(bytes(range(256)) * 4000)  # binary, about 1 MB, several chunks
    upload = MultipartUpload(path=source, fields={"purpose": "fine-tune"})
    sent: list[int] = []
    chunks = list(upload.body(sent.append))
    assert sum(len(chunk) for chunk in chunks) == upload.content_length
    assert max(len(chunk) for chunk in chunks[1:-1]) <= CHUNK_BYTES
    assert sum(sent) == source.stat().st_size

    received = tmp_path / "received"
    form = await receive_upload(_as_async(iter(chunks)), upload.content_type, received, 10**8, lambda _: None)
    assert received.read_bytes() == source.read_bytes()
    assert form.fields == {"purpose": "fine-tune"}
    assert form.filename == "we%22ird%0Aname.jsonl"


def test_sse_parser_messages_comments_and_multiline_data() -> None:
    lines = ["id: ftevent-1", "event: event", 'data: {"a":', "data: 1}", "", ": ping", "", "event: done",
             'data: {"status":"succeeded"}', ""]  # fmt: skip
    assert list(parse_sse(lines)) == [
        SseMessage("event", '{"a":\n1}', "ftevent-1"),
        None,
        SseMessage("done", '{"status":"succeeded"}', None),
    ]


def test_backoff_doubles_up_to_a_ceiling() -> None:
    assert [backoff_seconds(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_sparkline_scales_between_lowest_and_highest() -> None:
    assert sparkline([4.0, 3.0, 2.0, 1.0]) == "█▆▃▁"
    assert sparkline([2.0, 2.0]) == "▅▅"
    assert sparkline([]) == ""
    long = sparkline([float(n) for n in range(1000)], width=50)
    assert len(long) == 50 and long[0] == "▁" and long[-1] == "█"


def _metrics(step: int, loss: float, **extra: float) -> dict[str, object]:
    data = {"step": step, "total_steps": 10, "train_loss": loss, **extra}
    return {"id": f"e{step}", "type": "metrics", "message": f"step {step}", "created_at": 1_700_000_000, "data": data}


def test_watch_state_tracks_losses_and_renders() -> None:
    state = WatchState(job_id="ftjob-x", model="tiny-llama", status="running")
    state.apply({"id": "e0", "type": "message", "message": "Training started", "created_at": 1_700_000_000})
    for step, loss in [(1, 2.5), (2, 2.0), (3, 2.2)]:
        state.apply(_metrics(step, loss, tokens_per_second=900.0, eta_seconds=70.0))
    state.apply(_metrics(3, 2.2))  # a repeated step (replayed after a reconnect) is not counted twice
    evaluation = {"step": 3, "valid_loss": 2.4}
    state.apply({"id": "e9", "type": "metrics", "message": "eval", "created_at": 1, "data": evaluation})
    assert (state.step, state.total_steps) == (3, 10)
    assert state.losses == [2.5, 2.0, 2.2]
    assert (state.best_loss, state.best_step, state.valid_loss) == (2.0, 2, 2.4)
    assert state.eta(now=1_700_000_010) == 60.0

    console = Console(file=StringIO(), width=120)
    console.print(render(state, now=1_700_000_010))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    for expected in ("ftjob-x", "step 3/10", "30%", "ETA 1m 00s", "loss 2.2000", "best 2.0000 (step 2)",
                     "valid 2.4000", "tokens/s 900", "Training started", sparkline([2.5, 2.0, 2.2])):  # fmt: skip
        assert expected in shown, (expected, shown)
    assert "step 1" not in shown.split("Training started")[1]  # metrics lines stay out of the message log


def test_exit_codes_follow_the_final_status() -> None:
    assert [exit_code_for(s) for s in ("succeeded", "failed", "cancelled", "paused")] == [0, 1, 2, 3]


def test_an_error_the_user_can_fix_exits_with_the_error_code_and_a_message(tmp_path: Path) -> None:
    """What a command does with a CliError: its message and hint, no traceback, exit code 4 (not 1: a job's)."""
    environment = {"FINETUNE_BASE_URL": "http://127.0.0.1:9", "FINETUNE_API_KEY": None,
                   "FINETUNE_CONFIG": str(tmp_path / "absent.toml"), "COLUMNS": "200"}  # fmt: skip
    result = CliRunner(env=environment).invoke(app, ["files", "list"], prog_name="finetune")
    assert result.exit_code == 4, result.output  # ExitCode.ERROR, as docs/cli.md lists it
    assert "No API key for http://127.0.0.1:9" in result.output and "finetune login" in result.output
    assert "Traceback" not in result.output


def test_config_precedence_and_private_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "conf" / "config.toml"
    monkeypatch.setenv(config.ENV_CONFIG, str(path))
    assert config.resolve(None, None) == config.Connection("http://localhost:8080", None)

    config.write_config(path, "http://api.example:8080", 'sk-"quoted"\\key')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.resolve(None, None) == config.Connection("http://api.example:8080", 'sk-"quoted"\\key')
    assert config.resolve(None, "sk-flag").api_key == "sk-flag"
    assert config.resolve("api.example:8080/v1/", None).api_key == 'sk-"quoted"\\key'
    # A key saved for one server is never sent to another one.
    assert config.resolve("http://elsewhere:8080", None) == config.Connection("http://elsewhere:8080", None)


def test_resume_cursor_rewinds_past_out_of_order_neighbours() -> None:
    from app.cli.sse import REWIND_EVENTS, JobEventStream

    stream = JobEventStream(None, "ftjob-x", max_retries=1, on_retry=lambda *_: None)  # type: ignore[arg-type]
    assert stream.resume_cursor() is None
    # `e41` shares a millisecond with `e42` but was committed later: a cursor at `e42` would lose it for good.
    stream._arrived = [f"e{n:02d}" for n in range(41)] + ["e42"]
    assert stream.resume_cursor() == stream._arrived[-REWIND_EVENTS] == "e10"
    assert stream.resume_cursor() < "e41"


@pytest.mark.parametrize("width", [120, 80, 60, 40])
def test_table_ids_never_wrap_at_any_width(width: int) -> None:
    """`finetune models list` at 80 columns cut `ft:…` ids in two; an id must stay copyable whole."""
    from app.cli.render import print_table, table

    ids = ["ft:tiny-llama-demo:org-3f9a2c7e1b:demo:9c1d4e7a:ckpt-step-120", "tiny-llama-demo"]
    rows = [[model, "org-3f9a2c7e1b", "tiny-llama-demo", "adapter, merged", "yes", "2026-12-02 04:40:00"]
            for model in ids]  # fmt: skip
    out = Console(file=StringIO(), width=width, color_system=None)
    columns = ["ID", "OWNED BY", "BASE", "WEIGHTS", "SERVED", "CREATED"]
    print_table(out, table(columns, rows, ids=("ID", "OWNED BY", "BASE")))  # as `finetune models list` prints
    printed = out.file.getvalue()  # type: ignore[attr-defined]
    lines = printed.splitlines()
    for value in [*ids, "org-3f9a2c7e1b"]:
        assert any(value in line for line in lines), f"{value} cut at width {width}:\n{printed}"
    assert "2026-12-02" in printed.replace("\n", "").replace(" ", "").replace("│", "")  # the others fold, kept
