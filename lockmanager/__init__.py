"""The SMB lock manager: list the SMB file handles open on a Qumulo cluster and force-close them.

`model` (rows, columns, filter, sort), `join` (rows from the cluster's separate listings),
`lookups` (user names and paths asked once per id), `cluster` (every SDK call), `closing` (what a
close will do, and how it went), `export` (table, CSV, JSON), `presenter` and `jobs` (the window's
logic, screen-free), `gui` (Tk widgets only), `errors` (the tool's failures and their exit
codes), `cli` (the command line that qumulo_lock_manager.py, at the project root, runs).
"""
