"""The ``supportbot worker`` process: scheduled re-indexing, retraining and retention, and the
jobs queued through the API or the CLI. Every run holds a lease in the database (``job_lock``), so
no job runs twice at once however many workers share the database, and every run is recorded as a
:class:`core.db.tables.JobRecord`."""
