"""The suite's command-line options, and their validation before any host is contacted."""

from __future__ import annotations

from typing import Any

import pytest

from postfix_compliance.errors import UsageError
from postfix_compliance.facts.collect import DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, PREFETCH_HOSTS, parse_size
from postfix_compliance.facts.probes import validate_since
from postfix_compliance.profiles import PROFILES_DIR

# --avc-since=baseline: AVC-002 and LOG-001 judge what happened after the --baseline run ended on each host.
BASELINE_WINDOW = "baseline"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from postfix_compliance import hookspecs
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("postfix-compliance", "Postfix/SELinux compliance")
    group.addoption("--profile", help="profile name (fixtures/profiles) or YAML path; default: detected "
                                      "per host from /etc/os-release")
    group.addoption("--profiles-dir", default=PROFILES_DIR, help="directory of profile YAML files")
    group.addoption("--command-timeout", default=DEFAULT_TIMEOUT, metavar="SECONDS",
                    help="seconds each probe command may run (default %(default)s)")
    group.addoption("--max-probe-output", metavar="BYTES", default=str(DEFAULT_MAX_OUTPUT),
                    help="bytes of stdout and of stderr kept from one probe, e.g. 4194304 or 4M (default 4M); "
                         "a check that needs output cut there is an error naming the cap")
    group.addoption("--avc-since", default=None,
                    help="audit/log window, as ausearch -ts takes it (default: the profile's, 'recent' = 10 min), "
                         "or 'baseline': since the --baseline run ended on each host (its clock)")
    group.addoption("--no-flush", action="store_true",
                    help="never run `postqueue -f` (Q-002 then only watches the queue)")
    group.addoption("--read-only", action="store_true",
                    help="change nothing on any host: no `postqueue -f`, no `postfix check` (it creates missing "
                         "queue directories)")
    group.addoption("--postfix-check", action="store_true",
                    help="also run `postfix check` (SVC-005). Off by default: it runs Postfix's own programs as "
                         "root on the host, which create missing queue directories and, under SELinux, leave "
                         "audit records of the scan's own login session")
    group.addoption("--drain-timeout", default=None, metavar="SECONDS", help="seconds Q-002 waits (default: profile, 60)")
    group.addoption("--poll-interval", default=None, metavar="SECONDS", help="seconds between queue polls (default 0.5)")
    group.addoption("--postfix-config-dir", default=None,
                    help="check the Postfix instance with this config directory (MAIL_CONFIG)")
    group.addoption("--record-snapshot", metavar="DIR", default=None,
                    help="write each host's evidence to DIR/<host>.json (replay with snapshot://)")
    group.addoption("--report-dir", default="reports", help="where reports go (default %(default)s)")
    group.addoption("--no-reports", action="store_true", help="write no report files")
    group.addoption("--results-only", action="store_true",
                    help="write results.json only, no compliance.html, hosts/ pages or junit.xml: for a run that "
                         "is merged later (fleet run's shards, CI shards), whose merge makes the pages")

    # Transport: the suite's own. testinfra already defines --hosts, --connection, --ssh-config,
    # --ssh-identity-file, --sudo, --sudo-user and --ansible-inventory; they are read as they are.
    transport = parser.getgroup("postfix-compliance transport",
                                "Postfix/SELinux compliance: reaching hosts (see docs/ssh.md)")
    transport.addoption("--known-hosts", metavar="FILE", default=None,
                        help="known_hosts file for paramiko:// and ssh:// host keys (default: the ssh config's "
                             "UserKnownHostsFile, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts)")
    transport.addoption("--accept-new-host-keys", action="store_true",
                        help="record the key of a host never seen before in the known_hosts file and connect; "
                             "a CHANGED key is refused all the same")
    transport.addoption("--connect-timeout", default=10.0, metavar="SECONDS",
                        help="seconds to reach and log in to a host (default %(default)s)")
    transport.addoption("--prefetch-hosts", default=PREFETCH_HOSTS, metavar="N",
                        help="collect up to N hosts ahead of their checks, so that a fleet's network waits "
                             "overlap (default %(default)s; 0: one host at a time; without xdist only)")
    transport.addoption("--inventory-reader", default="auto", metavar="auto|builtin|ansible",
                        help="how --ansible-inventory is read: 'ansible' through `ansible-inventory --list` "
                             "(group_vars, host_vars, vault files, plugins, as the playbooks see them), 'builtin' "
                             "without Ansible (group_vars/ and host_vars/ beside the file; no vault), 'auto' "
                             "(default): ansible-inventory where it is installed")
    # Outputs and the verdict's inputs (plugin/outputs.py writes the files).
    from postfix_compliance.report.outputs import OUTPUTS
    for output in OUTPUTS:  # the renderers' table: the merge takes the same options
        if not output.pytest_writes:  # --junitxml is pytest's own option
            group.addoption(output.flag, dest=output.dest, metavar="DIR" if output.kind == "dir" else "FILE",
                            default=None, help=f"write {output.help}")
    group.addoption("--waivers", metavar="FILE", default=None,
                    help="YAML file of accepted exceptions (check, hosts, justification, owner, expires); "
                         "an expired waiver no longer covers its check")
    group.addoption("--baseline", metavar="FILE", default=None,
                    help="a results.json from the run before a change: report regressions, fixes, new AVC "
                         "denials, new/missing hosts; a regression or new denial makes the exit status 1")
    # CI shards: one slice of the run's hosts, stable by host (plugin/targets.py); `fleet merge` joins them.
    group.addoption("--shard", metavar="K/N", default=None,
                    help="check only slice K of N of the run's hosts (1 <= K <= N), chosen by a hash of each "
                         "host's id, so adding a host moves no other; a slice may be empty (exit 0). Join the "
                         "slices' results.json with `python -m postfix_compliance.fleet merge`")


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> Any:
    """Every usage error one `ERROR:` line: once the plugins and initial conftests are in (so that every
    option is known), the arguments are parsed here first, and an option nobody knows, or a value
    argparse refuses, is said in one line. pytest's own parse would say it as its four-line usage message.
    (This plugin is loaded by -p in a clone's pytest.ini and by the postfix-compliance command; installed
    and brought in by the entry point, the command's own OneLineUsage does it.)"""
    result = yield
    try:
        _, unknown = parser.parse_known_and_unknown_args(args)
    except pytest.UsageError as exc:
        from postfix_compliance.cli import one_line
        raise pytest.UsageError(one_line(str(exc))) from None
    unknown = [arg for arg in unknown if arg.startswith("-")]
    if unknown:
        raise pytest.UsageError(f"unrecognized arguments: {' '.join(unknown)}")
    return result


# Numeric options are taken as text and converted here, so that a wrong value is the suite's one ERROR line
# (argparse's own type= error is pytest's four-line usage message).
_NUMBERS = (("command_timeout", "--command-timeout", float), ("drain_timeout", "--drain-timeout", float),
            ("poll_interval", "--poll-interval", float), ("connect_timeout", "--connect-timeout", float),
            ("prefetch_hosts", "--prefetch-hosts", int))
INVENTORY_READERS = ("auto", "builtin", "ansible")


def _convert_numbers(config: pytest.Config) -> None:
    for dest, flag, kind in _NUMBERS:
        value = getattr(config.option, dest, None)
        if isinstance(value, str):
            try:
                setattr(config.option, dest, kind(value.strip()))
            except ValueError:
                what = "a whole number" if kind is int else "a number of seconds"
                raise UsageError(f"{flag} {value!r}: not {what}") from None


def validate(config: pytest.Config) -> None:
    """Option values that are wrong whatever the hosts: one UsageError line."""
    _convert_numbers(config)
    reader = config.getoption("inventory_reader", "auto")
    if reader not in INVENTORY_READERS:
        raise UsageError(f"--inventory-reader {reader!r}: use one of {', '.join(INVENTORY_READERS)}")
    since = config.getoption("avc_since")
    if since == BASELINE_WINDOW:
        if not config.getoption("baseline", None):
            raise UsageError("--avc-since=baseline needs --baseline FILE: the window starts where that run "
                             "ended on each host")
    elif since is not None:
        try:
            validate_since(since)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if not 0 < config.getoption("command_timeout") < float("inf"):  # `not <`: nan too
        raise UsageError("--command-timeout must be a positive number of seconds")
    try:
        parse_size(config.getoption("max_probe_output", str(DEFAULT_MAX_OUTPUT)))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not 0 < config.getoption("connect_timeout", 10.0) < float("inf"):
        raise UsageError("--connect-timeout must be a positive number of seconds")
    if not 0 <= config.getoption("prefetch_hosts", 0) <= 256:
        raise UsageError("--prefetch-hosts must be a number of hosts from 0 to 256")
    for name in ("drain_timeout", "poll_interval"):  # the profile's are checked the same way (schema)
        if config.getoption(name) is not None and not 0 < config.getoption(name) < float("inf"):
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    if config.getoption("shard", None) is not None:
        from postfix_compliance.plugin.targets import parse_shard
        parse_shard(config.getoption("shard"))
