"""Shared foundations: settings, errors and schemas. Imports nothing else of ours."""
