"""The request side: the service that owns the library and the queue (server, run by
`python -m pytarchive.service`), the commands it answers (commands) and who may run them (access)."""
