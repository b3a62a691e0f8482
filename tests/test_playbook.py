"""--remediation-playbook: the Ansible playbook of the fixes, for every scenario snapshot.

Every snapshot of fixtures/hosts/ is judged in a few multi-host runs (as tests/test_scenarios.py groups
them: the matrix' snapshots with their profiles, the recorded VM guest's with debian12), each writing a
playbook. Each playbook must pass `ansible-playbook --syntax-check` and `ansible-lint --profile production`
(no rule skipped), carry every failed check id as a task tag and no id of a check that did not fail, and
keep its tasks in runbook order. A hostile snapshot, whose queue directory holds a Jinja lookup and
quotes, shows the value stays data: it reads back as `!unsafe`, survives `--syntax-check` and
`--list-tasks`, and a `--check` run over SSH against a throwaway sshd on 127.0.0.x (restorecon faked
there, so nothing is relabelled) hands restorecon the text unchanged, and the lookup never runs.

Nothing here runs a playbook for real, and nothing runs against this machine but `--check` through
that sshd.
"""

from __future__ import annotations

import concurrent.futures
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import pytest

from results_golden import groups
from selftest import REPO, SuiteRun, run_suite

from postfix_compliance.checks import SECTIONS
from postfix_compliance.report import playbook
from postfix_compliance.report.playbook import Unsafe
from postfix_compliance.text import quote

BIN = os.path.dirname(sys.executable)
ANSIBLE_PLAYBOOK = os.path.join(BIN, "ansible-playbook")
ANSIBLE_LINT = os.path.join(BIN, "ansible-lint")
EXTRA_ARGS = ["--poll-interval", "0.1", "--postfix-check"]
HOSTS_PER_RUN = 24


def ansible_env(home: str) -> dict[str, str]:
    """Ansible isolated from this machine's configuration and home: its own ANSIBLE_HOME and temp."""
    return {**os.environ, "ANSIBLE_HOME": home, "ANSIBLE_LOCAL_TEMP": os.path.join(home, "tmp"),
            "ANSIBLE_CONFIG": os.path.join(home, "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0", "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}




@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[tuple[SuiteRun, str]]:
    """(suite run, its playbook) for every group of snapshots, two runs at a time."""
    base = tmp_path_factory.mktemp("playbooks")
    batches = []
    for key, paths in groups().items():
        chunks = max(1, -(-len(paths) // HOSTS_PER_RUN))
        batches += [(key, paths[i::chunks]) for i in range(chunks)]

    def run(index: int, key: str, paths: list[str]) -> tuple[SuiteRun, str]:
        book = str(base / f"fix{index}.yml")
        profile = [] if key == "detect" else [f"--profile={key}"]
        hosts = ",".join(f"snapshot://{p}" for p in paths)
        return run_suite(f"--hosts={hosts}", *profile, *EXTRA_ARGS, f"--remediation-playbook={book}",
                         f"--remediation-script={base / f'fix{index}.sh'}",
                         report_dir=str(base / f"run{index}"), timeout=300), book

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(run, i, key, paths) for i, (key, paths) in enumerate(batches)]
        done = [f.result() for f in futures]
    for suite_run, book in done:
        assert os.path.exists(book), f"no playbook written:\n{suite_run.stdout[-3000:]}\n{suite_run.stderr[-2000:]}"
    return done


def test_every_snapshot_is_in_a_run(runs):
    hosts = {r["host"] for run, _ in runs for r in run.results["results"]}
    snapshots = {f"snapshot://{os.path.relpath(p, REPO)}"
                 for p in glob.glob(os.path.join(REPO, "fixtures", "hosts", "*.json"))}
    assert snapshots <= hosts, sorted(snapshots - hosts)


STEP_TASK = re.compile(r"Step (\d+)/(\d+): (.*)$")


def _script_steps(script: str) -> dict[str, list[tuple[int, int, str]]]:
    """Per host block (its first selector), the steps as the script runs them: (N, TOTAL, what)."""
    steps: dict[str, list[tuple[int, int, str]]] = {}
    functions: dict[str, list[tuple[int, int, str]]] = {}
    current = None
    for line in script.splitlines():
        if re.match(r"^fix_host_\d+\(\) \{$", line):
            current = functions.setdefault(line.split("(")[0], [])
        match = re.match(r"^  pfc_step (\d+) (\d+) \w+ [01] (.+) h\d+_s\d+_need h\d+_s\d+_apply ", line)
        if match and current is not None:
            what = subprocess.run(["bash", "-c", f"printf %s {match.group(3)}"], capture_output=True, text=True,
                                  timeout=30).stdout  # the printed words, as the script prints them
            current.append((int(match.group(1)), int(match.group(2)), what))
        case = re.match(r"^  (\S+)\) (fix_host_\d+) ;;$", line)
        if case:
            steps[case.group(1)] = functions.get(case.group(2), [])
    return steps


def _play_steps(play: dict[str, Any]) -> list[tuple[int, int, str]]:
    """The steps of a play, in task order (a step's tasks share its number; their suffixes dropped)."""
    found: list[tuple[int, int, str]] = []
    for task in play["tasks"]:
        match = STEP_TASK.match(str(task["name"]))
        if match and (not found or found[-1][0] != int(match.group(1))):
            found.append((int(match.group(1)), int(match.group(2)), match.group(3)))
    return found


def test_script_and_playbook_run_the_same_steps_in_the_same_order(runs):
    """For every scenario snapshot and VM recording: the shell script's host block and the playbook's play are
    the same actions, in the same order, as the plan in results.json says (a step's name is its summary)."""
    compared = 0
    for suite_run, book in runs:
        script = open(book.replace(".yml", ".sh"), encoding="utf-8").read()
        by_selector = _script_steps(script)
        plans = suite_run.results["plan"]
        for play in _plays(book):
            target = str(play["vars"]["postfix_compliance_target"])
            selector = next(s for s in by_selector if s.endswith(quote(target)) or quote(target) in s.split("|"))
            script_steps = by_selector[selector]
            plan_steps = [a["summary"] for a in plans[target]["actions"] if not a["manual"]]
            play_steps = _play_steps(play)
            # the play's names carry the summary, plus a suffix on a step's helper tasks: compare their starts
            assert [(n, t) for n, t, _ in play_steps] == [(n, t) for n, t, _ in script_steps], target
            assert [w for _, _, w in script_steps] == plan_steps, target
            assert all(w.startswith(p) for (_, _, w), p in zip(play_steps, plan_steps)), (target, play_steps)
            compared += 1
    snapshots = glob.glob(os.path.join(REPO, "fixtures", "hosts", "*.json"))
    assert compared == len(snapshots), (compared, len(snapshots))


def test_syntax_check_passes(runs, tmp_path):
    env = ansible_env(str(tmp_path / "ansible"))
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[all]\n")
    for _, book in runs:
        proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory), "--syntax-check", book], cwd=tmp_path,
                              capture_output=True, text=True, env=env, timeout=180)
        assert proc.returncode == 0, f"{book}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_ansible_lint_production_profile_passes(runs, tmp_path):
    """ansible-lint's strictest profile, no rule skipped, offline (the collections ship with `ansible`)."""
    project = tmp_path / "project"
    project.mkdir()
    names = []
    for index, (_, book) in enumerate(runs):
        shutil.copyfile(book, project / f"fix{index}.yml")
        names.append(f"fix{index}.yml")
    env = ansible_env(str(tmp_path / "ansible"))
    proc = subprocess.run([ANSIBLE_LINT, "--offline", "--nocolor", "--format=pep8", "--profile", "production",
                           *names], cwd=project, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in proc.stderr + proc.stdout


def _plays(book: str) -> list[dict[str, Any]]:
    with open(book, encoding="utf-8") as handle:
        return playbook.load(handle.read())


def test_tasks_carry_exactly_the_failed_check_ids(runs):
    checked = 0
    for run, book in runs:
        by_target = {str(play["vars"]["postfix_compliance_target"]): play for play in _plays(book)}
        records: dict[str, list[dict[str, Any]]] = {}
        for record in run.results["results"]:
            records.setdefault(record["host"], []).append(record)
        for target, recs in records.items():
            play = by_target[target]
            failed = {r["check_id"] for r in recs if r["outcome"] == "fail"}
            others = {r["check_id"] for r in recs} - failed
            tags = {t for task in play["tasks"] for t in task.get("tags", [])}
            assert failed <= tags, (target, sorted(failed - tags))
            assert not tags & others, (target, sorted(tags & others))
            checked += 1
    # every snapshot is one host of some run: none skipped, however many the fixtures hold
    assert checked == len(glob.glob(os.path.join(REPO, "fixtures", "hosts", "*.json")))


def test_tasks_follow_the_runbook_order(runs):
    """Fix tasks (before the handlers flush) by the runbook section of their first check id."""
    sections = {}
    for run, _ in runs:
        sections.update({r["check_id"]: r["section"] for r in run.results["results"]})
    for _, book in runs:
        for play in _plays(book):
            ranks = []
            for task in play["tasks"]:
                if "ansible.builtin.meta" in task:
                    break
                if {"verify", "review", "rollback"} & set(task.get("tags", [])):
                    continue  # the symptoms' reminder, the review and rollbacks come last by design
                ids = [t for t in task.get("tags", []) if t in sections]
                if ids:
                    ranks.append(min(SECTIONS.index(sections[i]) for i in ids))
            assert ranks == sorted(ranks), (play["name"], [t["name"] for t in play["tasks"]])


def test_modules_made_for_the_fixes(runs):
    """The VM guest's and the matrix' scenarios get the modules the issue names, idempotent arguments."""
    tasks = [t for _, book in runs for play in _plays(book) for t in play["tasks"]]
    booleans = [t for t in tasks if "ansible.posix.seboolean" in t and "rollback" not in t["tags"]]
    assert booleans and {t["ansible.posix.seboolean"]["persistent"] for t in booleans} == {True, False}
    for stored, running in zip(booleans[::2], booleans[1::2]):  # the stored value, then the running one
        assert (stored["ansible.posix.seboolean"]["persistent"], running["ansible.posix.seboolean"]["persistent"]) \
            == (True, False) and stored["ansible.posix.seboolean"]["name"] == running["ansible.posix.seboolean"]["name"]
    assert any("community.general.sefcontext" in t and t["community.general.sefcontext"]["state"] == "present"
               for t in tasks)
    assert any("ansible.posix.selinux" in t for t in tasks)
    relabels = [t for t in tasks if t.get("ansible.builtin.command", {}).get("argv", [None])[0] == "restorecon"]
    assert relabels
    for task in relabels:
        assert task["changed_when"] == f"{task['register']}.stdout != ''"
        assert task["check_mode"] is False and "ansible_check_mode" in task["ansible.builtin.command"]["argv"][1]
    rollbacks = [t for t in tasks if "rollback" in t.get("tags", [])]
    assert rollbacks and all(set(t["tags"]) == {"never", "rollback"} for t in rollbacks)


# ----------------------------------------------------------------------------------------- hostile values
HOSTILE_MARK = "pfc-playbook-lookup-ran"


def hostile_queue(marker: str) -> str:
    return "/var/spool/{{ lookup('pipe', 'touch " + marker + "') }}/it's \"q\""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A snapshot whose queue directory (postconf, ls -Z, restorecon -n) holds a Jinja lookup and quotes;
    the suite's playbook for it."""
    base = tmp_path_factory.mktemp("hostile-playbook")
    marker = str(base / HOSTILE_MARK)
    queue = hostile_queue(marker)
    with open(os.path.join(REPO, "fixtures", "hosts", "spool-subdir-mislabelled.json"), encoding="utf-8") as handle:
        doc = json.load(handle)
    for ev in doc["evidence"]:
        for key in ("stdout", "command"):
            if isinstance(ev.get(key), str):
                ev[key] = ev[key].replace("/var/spool/postfix", queue)
    path = base / "hostile.json"
    path.write_text(json.dumps(doc))
    book = str(base / "fix.yml")
    run = run_suite(f"--hosts=snapshot://{path}", "--profile=rhel9", *EXTRA_ARGS, f"--remediation-playbook={book}",
                    report_dir=str(base / "reports"), timeout=300)
    assert run.outcomes().get("LBL-002") == "fail", run.outcomes()
    return run, book, queue, marker


def test_hostile_value_stays_data(hostile):
    _, book, queue, marker = hostile
    with open(book, encoding="utf-8") as handle:
        text = handle.read()
    (play,) = playbook.load(text)
    relabel = next(t for t in play["tasks"] if "LBL-002" in t.get("tags", []) and "ansible.builtin.command" in t)
    path = relabel["ansible.builtin.command"]["argv"][-1]
    assert isinstance(path, Unsafe) and path == queue
    assert isinstance(play["hosts"], Unsafe) and isinstance(play["vars"]["postfix_compliance_host"], Unsafe)
    # as Ansible's own loader reads it: the tag makes it untrusted text, never a template
    assert '!unsafe "/var/spool/{{ lookup(' in text
    assert not os.path.exists(marker)


def test_hostile_playbook_syntax_check_and_list_tasks(hostile, tmp_path):
    _, book, _, marker = hostile
    env = ansible_env(str(tmp_path / "ansible"))
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("mail1.example.com ansible_host=192.0.2.1\n")  # TEST-NET: never contacted
    for flag in ("--syntax-check", "--list-tasks"):
        proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory), flag, book], cwd=tmp_path,
                              capture_output=True, text=True, env=env, timeout=180)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not os.path.exists(marker)


@pytest.mark.ssh
def test_hostile_playbook_check_mode_over_ssh_hands_the_text_to_restorecon(hostile, tmp_path):
    """`ansible-playbook --check` against a throwaway sshd on 127.0.0.x whose restorecon is a fake that
    records its arguments: the module gets the path exactly as the host printed it, the lookup never runs."""
    from sshd import SshFleet

    _, book, queue, marker = hostile
    fleet = SshFleet(log_commands=False)
    try:
        host = fleet.add("ansible")
        argv_log = os.path.join(host.directory, "restorecon.argv")
        host.fake_command("restorecon", f"printf '%s\\n' \"$@\" >> {argv_log}")
        fleet.restart(host)  # PATH with the fake, for this host only
        known = fleet.known_hosts(host)
        inventory = tmp_path / "inventory.ini"
        inventory.write_text(
            f"mail1.example.com ansible_host={host.address} ansible_port={host.port} ansible_user=root "
            f"ansible_ssh_private_key_file={fleet.client_key} ansible_python_interpreter={sys.executable} "
            f"ansible_ssh_common_args='-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes "
            f"-o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes' ansible_ssh_pipelining=true\n")
        env = ansible_env(tempfile.mkdtemp(prefix="pfc-ans-"))  # short: ssh's control socket lives there
        proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory), "--check", "--diff", "--tags", "relabel", book], cwd=tmp_path,
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
        with open(argv_log, encoding="utf-8") as handle:
            argv = handle.read().splitlines()
        assert argv[0] == "-Rnv" and argv[-2:] == ["--", queue], argv  # check mode: nothing relabelled; data
        assert not os.path.exists(marker)
    finally:
        shutil.rmtree(env["ANSIBLE_HOME"], ignore_errors=True) if "env" in locals() else None
        fleet.stop()


# ----------------------------------------------------------------------------------------- the renderer
def run_of(records, started: float = 0.0, ended: float = 0.0, profile=None):
    """Records (results.json's) as the decided RunResult a renderer takes (each host's plan made from them)."""
    from postfix_compliance.run import RunResult, hosts_from_records
    from postfix_compliance.verdict import decide
    return decide(RunResult(started=started, ended=ended, profile=profile, hosts=hosts_from_records(records)))


def _record(check_id: str, outcome: str = "fail", host: str = "snapshot://a.json", name: str = "mail1",
            section: str = "Primary fix", **extra: Any) -> dict[str, Any]:
    return {"host": host, "host_name": name, "check_id": check_id, "title": f"title of {check_id}",
            "section": section, "outcome": outcome, "message": "m", "remediation": [], "rollback": [],
            "profile": None, "evidence": [], **extra}


@pytest.mark.parametrize("name", ["all", "ungrouped", "web*", "a:b", "!mail1", "a,b", "~mail.*", "mail[1:3]",
                                  "{{ lookup('pipe','id') }}", "", "-x"])
def test_a_host_name_that_is_a_pattern_gets_no_play(name):
    text = playbook.render(run_of([_record("SVC-002", name=name, section="Prevention")]))
    plays = playbook.load(text)
    assert all(str(p["hosts"]) != name for p in plays)
    assert "gets no play; its failed checks: SVC-002" in text


def test_inventory_name_is_the_plays_host():
    records = [_record("SVC-002", host="paramiko://root@10.0.0.5", name="10.0.0.5", section="Prevention")]
    (play,) = playbook.load(playbook.render(run_of(records), inventory_names={"paramiko://root@10.0.0.5": "mail-a"}))
    assert play["hosts"] == "mail-a" and play["vars"]["postfix_compliance_host"] == "mail-a"
    (play,) = playbook.load(playbook.render(run_of(records)))
    assert play["hosts"] == "10.0.0.5"


def test_every_play_guards_its_host_first():
    (play,) = playbook.load(playbook.render(run_of([_record("SVC-002", section="Prevention")])))
    guard = play["tasks"][0]
    assert guard["tags"] == ["always"]
    assert guard["ansible.builtin.assert"]["that"] == ["inventory_hostname == postfix_compliance_host",
                                                       "inventory_hostname in groups['all']"]


def test_review_items_fail_the_play_after_the_fixes():
    records = [_record("MOD-001", section="Rollback"), _record("SVC-002", section="Prevention"),
               _record("SEL-004", section="Prevention"), _record("AVC-002", section="Triage")]
    (play,) = playbook.load(playbook.render(run_of(records)))
    names = [next(k for k in t if k.startswith("ansible.")) for t in play["tasks"]]
    assert names[-1] == "ansible.builtin.fail"
    assert names.index("ansible.builtin.systemd") < names.index("ansible.builtin.fail")  # SVC-002's step first
    # AVC-002 with no cause in the evidence is for a person too, beside the module and the boot arguments
    assert play["tasks"][-1]["tags"] == ["AVC-002", "MOD-001", "SEL-004", "review"]
    assert any(t.get("tags") == ["AVC-002", "verify"] for t in play["tasks"])


def test_unsafe_round_trip_keeps_control_characters_escaped():
    value = Unsafe("/q/\x1b[31m{{ x }}\n'\"")
    text = playbook.dump({"v": value})
    assert "\x1b" not in text and "\n'" not in text
    assert playbook.load(text)["v"] == value and isinstance(playbook.load(text)["v"], Unsafe)


def test_option_path_is_checked_up_front(suite, tmp_path):
    run = suite("--hosts=snapshot://fixtures/hosts/healthy-rhel9.json", "--remediation-playbook=/proc/fix.yml")
    assert run.exit_status == 4, run.stdout[-2000:] + run.stderr[-2000:]
    assert "--remediation-playbook /proc/fix.yml" in run.stdout + run.stderr


@pytest.mark.ssh
def test_hosts_from_an_ansible_inventory_get_their_inventory_name(suite, tmp_path):
    """A real --ansible-inventory run (a throwaway sshd on 127.0.0.x, read-only, SEL-001 only): the play's
    `hosts:` is the inventory name, not the address the suite connected to."""
    from sshd import SshFleet

    fleet = SshFleet(log_commands=False)
    try:
        host = fleet.add("inventory")
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(f"all:\n  hosts:\n    mail-inv-1:\n      ansible_host: {host.address}\n"
                             f"      ansible_port: {host.port}\n      ansible_user: root\n"
                             f"      ansible_ssh_private_key_file: {fleet.client_key}\n")
        book = tmp_path / "fix.yml"
        run = suite(f"--ansible-inventory={inventory}", f"--known-hosts={fleet.known_hosts(host)}",
                    "--profile=debian12", "--read-only", "-k", "SEL-001", f"--remediation-playbook={book}")
        assert run.outcomes(), run.stdout[-3000:] + run.stderr[-2000:]
        (play,) = playbook.load(book.read_text())
        assert play["hosts"] == "mail-inv-1", play["hosts"]
        assert str(play["vars"]["postfix_compliance_target"]) == f"ssh://root@{host.address}:{host.port}"
    finally:
        fleet.stop()


def test_guard_refuses_ansibles_implicit_localhost(tmp_path):
    """A play for a host named `localhost` run with an inventory that lacks it: Ansible would use its implicit
    localhost (this machine); the guard stops the play first. (The play's only other task is a debug, and
    the run is --check: nothing here could change this machine either way.)"""
    book = tmp_path / "fix.yml"
    book.write_text(playbook.render(run_of([_record("AVC-002", name="localhost", section="Triage")])))
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[all]\n")
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory), "--check", str(book)], cwd=tmp_path,
                          capture_output=True, text=True, env=ansible_env(str(tmp_path / "ansible")), timeout=180)
    assert proc.returncode != 0
    assert "inventory_hostname in groups['all']" in proc.stdout and "ok=0" in proc.stdout, proc.stdout[-3000:]
    assert "Symptoms the steps above clear" not in proc.stdout  # the debug after the guard never ran
