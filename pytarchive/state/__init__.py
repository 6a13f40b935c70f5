"""The service's state in one SQLite file: the database itself (db), the folders and their manifests
(folders), the tapes (tapes). Only the service side imports it; the client never does."""
