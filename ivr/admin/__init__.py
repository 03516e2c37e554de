"""Live controls for the telecom admin: change channels/cps, pause/resume/stop, see status, export metrics.

Everything here is a read or a small write on the ledger database, so it works from any shell (and from another
machine when the database is PostgreSQL); running dialers poll the Control table about once a second.
"""
