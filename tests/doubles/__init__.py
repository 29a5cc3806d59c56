"""Test doubles of servers we cannot run here, each validated against the server's own contract."""
