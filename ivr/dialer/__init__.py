"""The night dialer: pacing (pacing.py), the Attempt bookkeeping from ESL events (tracker.py), the originate
command (originate.py), the loop of one process (dialer.py), reconciliation after a crash or reconnect
(reconcile.py), the heartbeat (node.py), the demo evening (demo.py) and the staff test call (single.py)."""
