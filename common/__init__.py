"""Shared plumbing for the Qumulo tools: config, auth (login), logs and errors (exit codes)."""
