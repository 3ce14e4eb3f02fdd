"""`python -m devstack.sms_emulator`: the command line in `devstack.sms_emulator.cli`."""

from devstack.sms_emulator.cli import main

raise SystemExit(main())
