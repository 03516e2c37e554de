"""Subcommands of `ivr` for this area (being built)."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    pass
