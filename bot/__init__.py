"""Conversations: follow-up rewriting and the answer service every channel calls."""
