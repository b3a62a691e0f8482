"""Probes and facts: run read-only commands, parse what they print into typed facts."""
