"""Register a spreadsheet of people for a GoTo Webinar: read → validate → register → report."""

__version__ = "0.1.0"
