"""`python -m postfix_compliance`: the `postfix-compliance` command (postfix_compliance/cli.py)."""

from postfix_compliance.cli import main

raise SystemExit(main())
