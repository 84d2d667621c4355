"""Evals: OpenAI-compatible evals, their runs, and the graders that grade each item."""
