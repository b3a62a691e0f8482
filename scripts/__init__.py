"""The operator scripts, a package only so that the wheel carries them as postfix_compliance.operator_scripts."""
