"""The base of every error meant for a person: the CLI prints its message alone, never a traceback."""


class IvrError(Exception):
    """A failure the user can act on; the message says what happened and what to do."""

    exit_code = 1
