"""The compliance checks (pytest tests, one file per runbook section): collected by the suite's plugin."""
