"""The VM tier: a real SELinux-enforcing Debian 12 guest (vm/), booted once per session; two flavours.

refpolicy (marker vm) runs Debian's own policy, in every CI run; targeted (marker vm_targeted) runs RHEL 9's
targeted policy on the same guest: a scheduled tier, deselected unless asked for (RUN_TARGETED). The same
fixtures (guest, scenario_suite, vm_session) serve both: a test's marker picks its guest.

Session: build the guest image unless cached (vm/build.sh), boot it on a throwaway qcow2 overlay
(vm/boot.sh), bring it to the tier's clean state (an SMTP sink inside the guest, Postfix relaying to it,
one message delivered), then `savevm clean` through QMP. Each scenario starts from `loadvm clean`, which
restores the overlay's disk and memory in about a second, so no scenario leaks into another.

If the guest cannot be built or booted here, every test of the tier fails with the reason: the tier never
skips. Timings go to the terminal summary ("vm tier timings").

POSTFIX_COMPLIANCE_VM_RECORD=1 also writes each scenario's trimmed evidence to fixtures/hosts/vm-<name>.json.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from vmtier import (GUEST_HOSTNAME, REPO, SINK_PORT, TIMINGS, VM_CACHE, VM_DIR, Guest, read_env, run_script,
                    tail, timing, trim_snapshot)

RECORD = os.environ.get("POSTFIX_COMPLIANCE_VM_RECORD") == "1"
FIXTURES = os.path.join(REPO, "fixtures", "hosts")

# The tier's clean state, reached once after boot and saved with savevm: Postfix relays everything that is
# not local to an SMTP sink inside the guest (the guest reaches nothing outside), and a first message went
# through it, submitted over SMTP (so no admin-shell descriptors reach a Postfix domain).
CLEAN_STATE = f"""
[ "$(hostname)" = {GUEST_HOSTNAME} ]
systemd-run --quiet --unit=smtp-sink python3 -u -W ignore -m smtpd -n -c DebuggingServer 127.0.0.1:{SINK_PORT}
postconf -e 'relayhost = [127.0.0.1]:{SINK_PORT}'
systemctl reload postfix
for i in $(seq 120); do ss -Hlnt 'sport = :{SINK_PORT}' | grep -q . && break; sleep 0.5; done
python3 -c 'import smtplib; smtplib.SMTP("127.0.0.1", 25, timeout=60).sendmail("root@{GUEST_HOSTNAME}.localdomain", ["someone@example.test"], "Subject: vm tier warm-up\\n\\nvm tier: first message\\n")'
for i in $(seq 240); do [ -z "$(postqueue -j)" ] && break; sleep 0.5; done
[ -z "$(postqueue -j)" ]
journalctl -u smtp-sink --no-pager -q | grep -q 'vm tier: first message'
"""


def pytest_terminal_summary(terminalreporter) -> None:
    if TIMINGS:
        terminalreporter.section("vm tier timings")
        for line in TIMINGS:
            terminalreporter.write_line(line)


FLAVOURS = {"refpolicy": "debian12", "targeted": "debian12-targeted"}  # guest flavour -> its profile
# The targeted-policy tier (tests/vm/test_vm_targeted.py, marker vm_targeted) is a scheduled tier: it needs
# RHEL 9's policy sources (RHEL_POLICY_DIR) and about 20 minutes more than CI's budget has. It runs when
# POSTFIX_COMPLIANCE_VM_TARGETED=1 or when -m names it; otherwise it is deselected, and the summary says so.
RUN_TARGETED = os.environ.get("POSTFIX_COMPLIANCE_VM_TARGETED") == "1"


# A VM test's deadline (tests/pytest.ini gives the others 10 minutes): its first test builds the image
# (vm/build.sh's own limit is 40 minutes) and boots the guest (20), then runs its scenario.
VM_TEST_TIMEOUT = 75 * 60


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if item.get_closest_marker("vm") or item.get_closest_marker("vm_targeted"):
            item.add_marker(pytest.mark.timeout(VM_TEST_TIMEOUT))
    if RUN_TARGETED or "vm_targeted" in (config.getoption("markexpr") or ""):
        return
    targeted = [item for item in items if item.get_closest_marker("vm_targeted")]
    if targeted:
        config.hook.pytest_deselected(items=targeted)
        items[:] = [item for item in items if not item.get_closest_marker("vm_targeted")]
        timing(f"targeted-policy tier: {len(targeted)} tests deselected (a scheduled tier: "
                       "POSTFIX_COMPLIANCE_VM_TARGETED=1, or -m vm_targeted, runs it; see vm/README.md)")


def build_image(flavour: str, tmp_path_factory) -> str:
    """The cached golden image directory of `flavour` (built now if missing: 5-10 min under TCG)."""
    log = str(tmp_path_factory.mktemp(f"vm-logs-{flavour}") / "build.log")
    if os.geteuid() != 0:
        pytest.fail("the VM tier needs root: vm/build.sh runs debootstrap, chroot and mount", pytrace=False)
    started = time.monotonic()
    env = {"VM_FLAVOUR": flavour}
    proc = run_script("build.sh", env=env, timeout=40 * 60, log=log)
    imgdir = proc.stdout.strip().splitlines()[-1]
    run_script("prune.sh", env=env, timeout=300, log=log)  # older images and stale run directories
    elapsed = time.monotonic() - started
    times = os.path.join(imgdir, "build-times.txt")
    if elapsed > 60 and os.path.exists(times):
        with open(times, encoding="utf-8") as handle:
            timing(f"{flavour} image built in {elapsed:.0f}s: " + " ".join(line.strip() for line in handle))
    else:
        timing(f"{flavour} image cached in {imgdir} ({elapsed:.1f}s to check)")
    return imgdir


def booted_guest(flavour: str):
    """The booted guest of `flavour` in its clean state, saved as the `clean` VM snapshot of its overlay."""
    os.makedirs(VM_CACHE, exist_ok=True)
    rundir = tempfile.mkdtemp(prefix="run-", dir=VM_CACHE)
    env = {"RUNDIR": rundir, "VM_FLAVOUR": flavour}
    log = os.path.join(rundir, "vm.log")
    started = time.monotonic()
    try:
        run_script("boot.sh", env=env, timeout=20 * 60, log=log)
        info = read_env(os.path.join(rundir, "env"))
        guest = Guest(rundir, int(info["VM_PORT"]), info["VM_SSH_KEY"], info["VM_KNOWN_HOSTS"], info["VM_QMP"],
                      info["VM_PIDFILE"], info["VM_CONSOLE"], profile=FLAVOURS[flavour])
        timing(f"{flavour} boot: {time.monotonic() - started:.1f}s ({tail(os.path.join(rundir, 'times'), 1).strip()})")
        step = time.monotonic()
        guest.sh(CLEAN_STATE, timeout=300)
        if flavour == "targeted":
            # Debian's Postfix start at boot logs real denials under RHEL's policy: post-install runs
            # `chmod 700 hold trace` as root in postfix_master_t, which has no fowner there (EPERM, harmless:
            # the modes are already right). They are history to the scenarios: their window starts at the
            # clean state (loadvm restores the guest's clock with it).
            guest.avc_since = guest.guest_time()
        timing(f"{flavour} clean state (sink, relayhost, a first message delivered): {time.monotonic() - step:.1f}s")
        timing(f"{flavour} savevm clean: {guest.savevm('clean'):.1f}s")
        yield guest
    finally:
        stop = subprocess.run([os.path.join(VM_DIR, "stop.sh")], env={**os.environ, "VM_CACHE": VM_CACHE, **env},
                              capture_output=True, text=True, timeout=120)
        timing(f"{flavour} stop: {stop.stdout.strip()} {stop.stderr.strip()}".strip())
        shutil.rmtree(rundir, ignore_errors=True)


def restored(session: Guest, request) -> Guest:
    loaded, ssh = session.loadvm("clean")
    timing(f"{request.node.name}: loadvm clean {loaded:.1f}s, SSH answered {ssh:.1f}s later")
    return session


def scenario_runner(session: Guest, suite, tmp_path, request):
    """`run(name, *args)` -> (live run, replay run): the suite against the guest, its evidence recorded
    with --record-snapshot, trimmed, and replayed offline. name=None: no recording, replay is None."""
    counter = {"n": 0}

    def _run(name: str | None, *args: str):
        counter["n"] += 1
        record_dir = str(tmp_path / f"snapshot{counter['n']}")
        record = [f"--record-snapshot={record_dir}"] if name else []
        started = time.monotonic()
        run = suite(*session.suite_args(), *record, *args, timeout=1200)
        timing(f"{request.node.name}: suite {name or ' '.join(args)}: {time.monotonic() - started:.1f}s, "
               f"exit {run.exit_status}, fail {sorted(run.ids_with('fail'))}, error {sorted(run.ids_with('error'))}")
        if not name:
            return run, None
        recorded = os.listdir(record_dir) if os.path.isdir(record_dir) else []
        assert len(recorded) == 1, f"--record-snapshot wrote {recorded}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        path = os.path.join(record_dir, f"vm-{name}.json")
        os.rename(os.path.join(record_dir, recorded[0]), path)
        trim_snapshot(path, run.outcomes())
        profile = [a for a in args if a.startswith("--profile=")][-1:] or [f"--profile={session.profile}"]
        replay = suite(f"--hosts=snapshot://{path}", *profile, "--poll-interval=0.01",
                       *[a for a in args if not a.startswith("--profile=")])
        if RECORD:
            shutil.copyfile(path, os.path.join(FIXTURES, f"vm-{name}.json"))
        return run, replay

    return _run


# ---------------------------------------------------------------------------------------------- fixtures
def flavour_of(request) -> str:
    """The guest a test runs against: its marker says (vm_targeted: targeted; otherwise refpolicy)."""
    return "targeted" if request.node.get_closest_marker("vm_targeted") else "refpolicy"


@pytest.fixture(scope="session")
def vm_guests(tmp_path_factory):
    """`vm_guests(flavour)`: that flavour's guest, its image built and the guest booted on first use, once per
    session (a run of one tier boots one guest); all stopped at the end of the session."""
    booted: dict[str, Guest] = {}
    failed: dict[str, str] = {}  # a guest that could not be built or booted is not tried again per test
    with contextlib.ExitStack() as stack:
        def get(flavour: str) -> Guest:
            if flavour in failed:
                pytest.fail(f"the {flavour} guest could not be started (as the first test of it said):\n"
                            f"{failed[flavour]}", pytrace=False)
            if flavour not in booted:
                try:
                    build_image(flavour, tmp_path_factory)
                    booted[flavour] = stack.enter_context(contextlib.contextmanager(booted_guest)(flavour))
                except BaseException as exc:  # pytest.fail's exception is not an Exception
                    failed[flavour] = str(exc)[-3000:]
                    raise
            return booted[flavour]

        yield get


@pytest.fixture
def vm_session(vm_guests, request) -> Guest:
    """This test's guest as it is (no restore)."""
    return vm_guests(flavour_of(request))


@pytest.fixture
def guest(vm_session, request) -> Guest:
    """This test's guest, restored to its clean state for this scenario."""
    return restored(vm_session, request)


@pytest.fixture
def scenario_suite(vm_session, suite, tmp_path, request):
    return scenario_runner(vm_session, suite, tmp_path, request)
