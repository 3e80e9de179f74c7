"""`python -m phenomon` is the `phenomon` command."""

from phenomon.cli import main

raise SystemExit(main())
