"""Every database query of the project, one module per table group. Functions take the session and
keyword-only arguments; each one that reads or writes a tenant's rows takes ``tenant_id`` and
filters on it, and each one that writes commits its own unit of work (callers never commit)."""
