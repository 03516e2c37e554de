"""Talking to FreeSWITCH: ESL framing, safe dial strings, the inbound client and the outbound-socket server.

See docs/architecture.md "switch" for the contracts; modules: framing, dialstring, esl, outbound, errors.
"""
