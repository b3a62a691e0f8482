"""Postfix under SELinux: a compliance suite (facts, checks, reports) built on pytest and testinfra."""

__version__ = "0.1.0"
