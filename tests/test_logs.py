"""Phone numbers never reach a log line in full unless masking is turned off."""

import logging

from ivr import logs


def test_mask_number_keeps_prefix_and_last_four():
    assert logs.mask_number("+380501234567") == "+38050***4567"
    assert "1234567" not in logs.mask_number("380501234567")
    assert logs.mask_number("") == ""


def test_log_lines_are_masked_by_default(caplog):
    logs.setup_logging("INFO", mask_numbers=True)
    logger = logging.getLogger("ivr.test")
    filt = logs.MaskNumbersFilter()
    record = logger.makeRecord("ivr.test", logging.INFO, __file__, 1,
                               "calling number=%s attempt=%s", ("+380501234567", "3606c8ee-569a-444b"), None)
    filt.filter(record)
    text = record.getMessage()
    assert "+380501234567" not in text
    assert "+38050***4567" in text
    assert "3606c8ee-569a-444b" in text  # UUIDs are not numbers to mask


def test_masking_can_be_turned_off():
    logs.setup_logging("INFO", mask_numbers=False)
    try:
        assert logs.shown_number("+380501234567") == "+380501234567"
    finally:
        logs.setup_logging("INFO", mask_numbers=True)
    assert logs.shown_number("+380501234567") == "+38050***4567"


def test_log_handler_follows_a_replaced_stderr(monkeypatch):
    """A stderr replaced (and closed) after set-up must not turn later log lines into logging-error tracebacks."""
    import io
    import sys

    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logs.setup_logging("INFO", mask_numbers=True)
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("ivr.test").info("event=after_replace number=%s", "+380501234567")
    text = second.getvalue()
    assert "event=after_replace" in text and "+38050***4567" in text
    assert "Logging error" not in text
