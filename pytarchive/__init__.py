"""pytarchive: archive folders to LTFS tapes in an mtx tape library (service, client, queue, library layer)."""
