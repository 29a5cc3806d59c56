"""Evaluation on data sets in the project's format (corpus.jsonl + questions.jsonl)."""
