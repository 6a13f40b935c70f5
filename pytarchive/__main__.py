"""`python -m pytarchive ...` is the client, like the `pytarchive` command."""

from pytarchive.client import main

raise SystemExit(main())
