"""Versioned prompt templates and the token-budgeted prompt builder."""
