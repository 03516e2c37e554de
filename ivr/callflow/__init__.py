"""The IVR of one answered call (callflow): right-party check, message, heard rule, menu, goodbye.

`run_call(session, ctx) -> CallResult` (flow.py) is what the dialer calls for each answered call;
`heard.judge(result, message_ms, share)` is the heard rule; `CallContext` (context.py) is what the call needs;
`CallResult` (results.py) the facts it hands back. Nothing here writes to the database.
"""

from ivr.callflow.context import CallContext
from ivr.callflow.flow import run_call
from ivr.callflow.heard import Heard, judge
from ivr.callflow.results import AccountOutcome, CallResult

__all__ = ["AccountOutcome", "CallContext", "CallResult", "Heard", "judge", "run_call"]
