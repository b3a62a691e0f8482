"""Hostile input files and options: inventory values are data, and every bad input is one line.

Each case runs the suite as a user would and expects exit status 4, exactly one `ERROR:` line naming
the file, key or option, and no traceback; the snapshot with a lone surrogate is the exception: it is
read (the surrogate replaced) and the run writes its reports. Nothing here leaves loopback: an
injected ssh config's ProxyCommand would only `touch` a marker file, and the test shows it never ran.
"""

from __future__ import annotations

import html.parser
import json
import os
import resource
import subprocess
import sys

import pytest

from selftest import HOSTS_DIR, REPO, SuiteRun, assert_one_error_line

HEALTHY = os.path.join(HOSTS_DIR, "healthy-rhel9.json")
RHEL9_PROFILE = os.path.join(REPO, "fixtures", "profiles", "rhel9.yaml")


def _write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _fifo(path) -> str:
    os.mkfifo(path)
    return str(path)


# ---------------------------------------------------------------------- inventory values are data
@pytest.fixture
def evil_ssh_config(tmp_path):
    """An ssh config whose ProxyCommand leaves a marker on this machine if anything ever loads it."""
    marker = tmp_path / "proxycommand-ran"
    config = _write(tmp_path / "evil_ssh_config",
                    f"Host *\n  ProxyCommand sh -c 'touch {marker}; exit 1'\n  ConnectTimeout 2\n")
    return config, marker


INJECTIONS = [
    # (the host's inventory entry, the key the error names)
    (lambda evil: {"ansible_host": f"127.0.0.1:22?ssh_config={evil}"}, "ansible_host"),
    (lambda evil: {"ansible_host": f"127.0.0.1?ssh_identity_file={evil}&sudo=true&sudo_user=evil"}, "ansible_host"),
    (lambda evil: {"ansible_host": "127.0.0.1", "ansible_port": f"22?ssh_config={evil}"}, "ansible_port"),
    (lambda evil: {"ansible_host": "127.0.0.1", "ansible_user": f"root@127.0.0.1:22?ssh_config={evil}#"},
     "ansible_user"),
    (lambda evil: {"ansible_host": "127.0.0.1", "ansible_user": f"-oProxyCommand=sh {evil}"}, "ansible_user"),
    (lambda evil: {"ansible_host": "127.0.0.1", "ansible_become": True,
                   "ansible_become_user": f"x&ssh_config={evil}"}, "ansible_become_user"),
    (lambda evil: {"ansible_host": "127.0.0.1", "ansible_ssh_private_key_file": f"{evil}\nProxyCommand x"},
     "ansible_ssh_private_key_file"),
]


@pytest.mark.parametrize("entry, key", INJECTIONS, ids=[
    "host-ssh_config", "host-identity-sudo", "port-ssh_config", "user-url", "user-option", "become_user-query",
    "key_file-newline"])
def test_inventory_value_cannot_add_options(suite, tmp_path, evil_ssh_config, entry, key):
    config, marker = evil_ssh_config
    inventory = _write(tmp_path / "hosts.json", json.dumps({"mail": {"hosts": ["mail1"]},
                                                            "_meta": {"hostvars": {"mail1": entry(config)}}}))
    run = suite(f"--ansible-inventory={inventory}", f"--known-hosts={tmp_path / 'known_hosts'}",
                "--connect-timeout=3", "--no-flush", "--drain-timeout=1")
    assert not marker.exists(), "the injected ssh config's ProxyCommand ran on the scanning machine"
    assert_one_error_line(run, inventory, "mail1", key)


def test_inventory_host_name_cannot_add_options(suite, tmp_path, evil_ssh_config):
    """Without ansible_host the inventory's host name is the address: it is checked the same way."""
    config, marker = evil_ssh_config
    inventory = _write(tmp_path / "hosts.yml", f'all:\n  hosts:\n    "127.0.0.1:22?ssh_config={config}":\n')
    run = suite(f"--ansible-inventory={inventory}", f"--known-hosts={tmp_path / 'known_hosts'}",
                "--connect-timeout=3", "--no-flush", "--drain-timeout=1")
    assert not marker.exists(), "the injected ssh config's ProxyCommand ran on the scanning machine"
    assert_one_error_line(run, inventory, "not a host name or IP address")


@pytest.mark.parametrize("line, expected", [
    ("mail[0:9999999].example.com", "expands to more than 100000 hosts"),
    ("mail[0:999][0:999][0:999]", "expands to more than 100000 hosts"),
    ("mail[1:9:0]", "range step 0 must be at least 1"),
    ("h" + "[1:1]" * 3000, "more than 16 ranges in one name"),
], ids=["ten-million", "three-ranges", "step-0", "many-ranges"])
def test_inventory_range_is_limited_before_expanding(suite, tmp_path, line, expected):
    inventory = _write(tmp_path / "hosts.ini", f"[mail]\n{line} ansible_host=127.0.0.1\n")
    # Expanding first (as the suite once did: 10 million names for the first line) must fail here,
    # not take this machine's memory: the run gets 2 GiB of address space and a minute.
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", f"--report-dir={tmp_path / 'r'}",
               f"--ansible-inventory={inventory}"]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)))
    error = assert_one_error_line(SuiteRun(proc.returncode, proc.stdout, proc.stderr, ""), inventory, expected)
    assert error.count(inventory) == 1 and line[:40] in error, error


def _deep_groups(depth: int) -> str:
    return "all:\n  children:\n" + "".join("  " * (i + 2) + f"g{i}:\n" + "  " * (i + 3) + "children:\n"
                                           for i in range(depth))


@pytest.mark.parametrize("name, text, expected", [
    ("hosts.yml", "all:\n  children: 5\n", "all.children must be a mapping of groups"),
    ("hosts.yml", "all:\n  hosts:\n    mail1: {ansible_connection: [ssh]}\n", "ansible_connection"),
    ("hosts.json", '{"_meta": {"hostvars": []}, "mail": ["mail1"]}', "_meta.hostvars must map host names"),
    ("hosts.json", '{"mail": {"hosts": [{"name": "mail1"}]}}', "mail.hosts must be a list of host names"),
    ("hosts.yml", _deep_groups(1500), "nested too deeply"),
], ids=["children-number", "connection-list", "hostvars-list", "host-object", "deep-groups"])
def test_inventory_of_the_wrong_shape(suite, tmp_path, name, text, expected):
    inventory = _write(tmp_path / name, text)
    run = suite(f"--ansible-inventory={inventory}")
    assert_one_error_line(run, inventory, expected)


def test_inventory_yaml_aliases_are_read_once(tmp_path):
    """40 levels of groups each holding the one below twice (YAML aliases): 2^40 paths, 81 groups."""
    anchors = ["defs:", "  vars:", "    x:", "     - &a0 {hosts: {mail1: }}"]
    anchors += [f"     - &a{i} {{children: {{l{i}a: *a{i - 1}, l{i}b: *a{i - 1}}}}}" for i in range(1, 40)]
    inventory = _write(tmp_path / "hosts.yml", "\n".join(anchors) + "\nall:\n  children:\n    top: *a39\n")
    code = ("import sys; from postfix_compliance.inventory import inventory_urls; "
            "print(inventory_urls(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", code, inventory], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.strip() == "['ssh://mail1']", proc.stdout + proc.stderr


@pytest.mark.parametrize("url", ["ssh://root@127.0.0.1:70000", "paramiko://127.0.0.1:0", "127.0.0.1:99999"])
def test_port_out_of_range_in_host_url(suite, url):
    run = suite(f"--hosts={url}", "--connect-timeout=3")
    assert_one_error_line(run, url, "port must be a number from 1 to 65535")


@pytest.mark.parametrize("option", ["--command-timeout=nan", "--connect-timeout=inf", "--drain-timeout=-1",
                                    "--poll-interval=0"])
def test_number_of_seconds_out_of_range(suite, option):
    run = suite(f"--hosts=snapshot://{HEALTHY}", "--no-flush", option)
    assert_one_error_line(run, option.split("=")[0], "must be a positive number of seconds")


def test_an_option_nobody_knows_is_one_line(suite):
    """pytest's own parser would print its usage line, the error, the ini file and the rootdir."""
    run = suite(f"--hosts=snapshot://{HEALTHY}", "--hots=mail1", "--no-flush")
    line = assert_one_error_line(run, "unrecognized arguments: --hots=mail1")
    assert "usage:" not in run.stdout + run.stderr, line


def test_an_image_url_without_a_root_is_bad_input(suite):
    run = suite("--hosts=image://", "--no-flush")
    assert_one_error_line(run, "bad host URL 'image://': image:// needs a path")


@pytest.mark.parametrize("option, says", [
    ("--command-timeout=abc", "--command-timeout 'abc': not a number of seconds"),
    ("--drain-timeout=1O", "--drain-timeout '1O': not a number of seconds"),
    ("--prefetch-hosts=many", "--prefetch-hosts 'many': not a whole number"),
    ("--inventory-reader=yaml", "--inventory-reader 'yaml': use one of auto, builtin, ansible"),
])
def test_a_wrong_option_value_is_the_suites_one_line_not_pytests_usage(suite, option, says):
    """argparse's type= and choices= errors are pytest's usage message (a `usage:` line, the error, the
    ini file and rootdir): the suite's options take text and say what is wrong in one line."""
    run = suite(f"--hosts=snapshot://{HEALTHY}", "--no-flush", option)
    line = assert_one_error_line(run, says)
    assert "usage:" not in run.stdout + run.stderr, line


# ---------------------------------------------------------------------- profiles and snapshots
def test_profile_value_that_reaches_a_command_is_checked_at_load(suite, tmp_path):
    with open(RHEL9_PROFILE, encoding="utf-8") as handle:
        profile = handle.read()
    assert "\n  since: recent\n" in profile
    path = _write(tmp_path / "rhel9-evil.yaml",
                  profile.replace("\n  since: recent\n", f'\n  since: "recent; touch {tmp_path / "ran"}"\n'))
    run = suite(f"--profile={path}", f"--hosts=snapshot://{HEALTHY}", "--no-flush", "--drain-timeout=1")
    assert_one_error_line(run, path, "audit.since")


def _snapshot_with(tmp_path, change) -> str:
    with open(HEALTHY, encoding="utf-8") as handle:
        data = json.load(handle)
    change(data)
    return _write(tmp_path / "snap.json", json.dumps(data))


def _set(index, key, value):
    def change(data):
        data["evidence"][index][key] = value
    return change


@pytest.mark.parametrize("change, expected", [
    (_set(1, "duration", "fast"), "evidence[1].duration must be a number of seconds, not 'fast'"),
    (_set(1, "duration", None), "evidence[1].duration must be a number"),
    (_set(1, "exit_status", True), "evidence[1].exit_status must be an integer or null"),
    (_set(1, "error", ["x"]), "evidence[1].error must be a string or null"),
    (_set(1, "truncated", "lots"), "evidence[1].truncated must be a number of bytes or null"),
    (lambda data: data.update(host={"name": "x"}), '"host" must be a string'),
], ids=["duration-text", "duration-null", "exit_status-bool", "error-list", "truncated-text", "host-object"])
def test_snapshot_field_of_the_wrong_type(suite, tmp_path, change, expected):
    path = _snapshot_with(tmp_path, change)
    run = suite(f"--hosts=snapshot://{path}", "--no-flush", "--drain-timeout=1")
    assert_one_error_line(run, path, expected)


@pytest.mark.parametrize("make_args, expected", [
    (lambda d: ["--hosts=snapshot://" + _write(d / "snap.json", '{"format": ' + "9" * 5000 + "}")],
     "not JSON: Exceeds the limit"),
    (lambda d: [f"--profile={_write(d / 'p.yaml', 'name: ' + '[' * 5000 + ']' * 5000)}"],
     "not valid YAML: nested too deeply"),
    (lambda d: ["--ansible-inventory=" + _write(d / "hosts.yml", "all:\n  hosts:\n    m: {ansible_port: "
                                                + "9" * 5000 + "}\n")],
     "cannot read: Exceeds the limit"),
], ids=["snapshot-long-number", "profile-deep", "inventory-long-number"])
def test_input_that_breaks_the_parser(suite, tmp_path, make_args, expected):
    run = suite(*make_args(tmp_path))
    assert_one_error_line(run, expected)


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_snapshot_with_a_lone_surrogate_is_read_and_reported(suite, tmp_path):
    """`\\udcff` is valid JSON but no str Python can write: it is replaced, and the reports are written."""
    def change(data):
        getenforce = next(e for e in data["evidence"] if e["probe"] == "getenforce")
        getenforce["stdout"] = "Enforcing\nMARK-SURROGATE"
    path = _snapshot_with(tmp_path, change)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    _write(tmp_path / "snap.json", text.replace("MARK-SURROGATE", "\\udcff"))
    run = suite(f"--hosts=snapshot://{path}", "--profile=rhel9", "--no-flush", "--drain-timeout=1")
    output = run.stdout + run.stderr
    # SEL-001 cannot read "Enforcing\n\ufffd" and says so (exit 2, a check error); nothing crashes.
    assert "Traceback" not in output and run.exit_status == 2, output
    assert run.outcomes()["SEL-001"] == "error" and run.outcomes()["SEL-003"] == "pass"
    with open(os.path.join(run.report_dir, "compliance.html"), "rb") as handle:
        page = handle.read().decode("utf-8")  # UTF-8 throughout, or this raises
    assert page.lstrip().lower().startswith("<!doctype html") and page.rstrip().endswith("</html>")
    tags = _Tags()
    tags.feed(page)
    assert "body" in tags.tags and "table" in tags.tags
    assert "Enforcing\\n\ufffd" in json.dumps(run.results, ensure_ascii=False)  # the getenforce evidence
    assert "\ufffd" in page


@pytest.mark.parametrize("text, kind", [
    ('{"a": "x\\udcff"}', "json"), ('{"a": ["\\uDC80"]}', "json"), ('{"\\ud800": 1}', "json"),
    ('a: "x\\udcff"', "yaml"), ('a: ["\\U0000DCFF"]', "yaml"), ('"\\ud800": 1', "yaml"),
])
def test_every_escape_that_makes_a_lone_surrogate_is_scrubbed(tmp_path, text, kind):
    """The surrogate walk runs only where an escape can make one (results.json's many \\u00XX do not):
    each way JSON and YAML spell one is still found, and the value read can be written."""
    from postfix_compliance import inputfiles
    path = _write(tmp_path / f"f.{kind}", text)
    data = inputfiles.load_json(path) if kind == "json" else inputfiles.load_yaml(path)
    json.dumps(data, ensure_ascii=False).encode("utf-8")  # a lone surrogate left raises here
    assert "\ufffd" in json.dumps(data, ensure_ascii=False)
    assert not inputfiles.may_hold_surrogates('{"out": "\\u001b[31m \\u00e9 \\u0dcf \\\\d800"}')


# ---------------------------------------------------------------------- where the suite writes
@pytest.mark.parametrize("make_args, expected", [
    (lambda d: [f"--metrics={d}"], "--metrics"),
    (lambda d: [f"--remediation-script={d}"], "--remediation-script"),
    (lambda d: [f"--record-snapshot={_write(d / 'a-file', 'x')}"], "--record-snapshot"),
    (lambda d: [f"--report-dir={_write(d / 'a-file', 'x')}"], "--report-dir"),
    (lambda d: [f"--metrics={_write(d / 'a-file', 'x')}/sub/metrics.prom"], "--metrics"),
    (lambda d: ["--metrics=/proc/no-such-dir/metrics.prom"], "--metrics /proc/no-such-dir/metrics.prom"),
    (lambda d: ["--remediation-script=/proc/fix.sh"], "--remediation-script /proc/fix.sh"),
    (lambda d: ["--record-snapshot=/proc/snapshots"], "--record-snapshot /proc/snapshots"),
    # A FIFO of our own, not /dev/null: the old code's atomic rename replaced whatever was there.
    (lambda d: [f"--metrics={_fifo(d / 'a-fifo')}"], "not a regular file"),
], ids=["metrics-dir", "remediation-dir", "snapshots-file", "report-dir-file", "metrics-under-file",
        "metrics-proc", "remediation-proc", "snapshots-proc", "metrics-fifo"])
def test_output_path_that_cannot_be_written(tmp_path, make_args, expected):
    from selftest import run_suite

    report_dir = tmp_path / "reports"
    args = make_args(tmp_path)
    if not any(a.startswith("--report-dir=") for a in args):
        args.append(f"--report-dir={report_dir}")
    # run_suite adds its own --report-dir first; the one given last wins, as pytest reads options.
    run = run_suite(f"--hosts=snapshot://{HEALTHY}", "--no-flush", "--drain-timeout=1", *args,
                    report_dir=str(report_dir))
    assert_one_error_line(run, expected)
    assert not os.path.exists(report_dir / "results.json"), "the run went ahead"


# ---------------------------------------------------------------------- fleet merge
def _results_with(tmp_path, change) -> str:
    record = {"host": "snapshot://a.json", "host_name": "mail1", "check_id": "SEL-001", "title": "Enforcing",
              "severity": "high", "section": "Prevention", "outcome": "fail", "message": "Permissive",
              "remediation": ["setenforce 1"], "profile": "rhel9"}
    doc = {"format": "postfix-compliance-results/1", "generated_at": "2026-11-30T10:00:00Z",
           "started_at": "2026-11-30T09:59:00Z", "profile": "rhel9", "results": [record]}
    change(doc, record)
    return _write(tmp_path / "results.json", json.dumps(doc))


@pytest.mark.parametrize("change, expected", [
    # the published schema's words (postfix_compliance/schemas/results.schema.json), naming the place
    (lambda doc, rec: doc.update(profile=["rhel9"]), "profile: ['rhel9'] is not of type 'string', 'null'"),
    (lambda doc, rec: rec.update(profile={"name": "rhel9"}),
     "results[0].profile: {'name': 'rhel9'} is not of type 'string', 'null'"),
    (lambda doc, rec: rec.update(remediation=5), "results[0].remediation: 5 is not of type 'array', 'null'"),
], ids=["profile-list", "record-profile-object", "remediation-number"])
def test_fleet_merge_input_with_wrong_types(tmp_path, change, expected):
    path = _results_with(tmp_path, change)
    proc = subprocess.run([sys.executable, "-m", "postfix_compliance.fleet", "merge", str(tmp_path / "out"), path],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 4, output
    assert "Traceback" not in output
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: fleet: ") and path in lines[0], output
    assert expected in lines[0], output
