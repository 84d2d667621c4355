"""Errors the training process reports, each with the `code` its error event carries."""

from __future__ import annotations


class TrainingError(Exception):
    """A run that cannot go on; `code` is what the progress protocol's error event says."""

    code = "training_error"


class InvalidConfigError(TrainingError, ValueError):
    """The config, the model or the data cannot make a valid run."""

    code = "invalid_config"


class MissingChatTemplateError(InvalidConfigError):
    code = "missing_chat_template"


class ExampleError(ValueError):
    """One line of a dataset that cannot be trained on; `code` names the problem for reports."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.message} ({self.code})"
