"""`python -m devstack.host`: the command line in `devstack.host.cli`."""

from devstack.host.cli import main

raise SystemExit(main())
