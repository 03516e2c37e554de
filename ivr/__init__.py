"""Night dialer: an outbound debt-reminder IVR on FreeSWITCH for utilities."""

__version__ = "0.1.0"
