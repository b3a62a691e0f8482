"""LOG-001 reads the journal for the window; without a journal, the mail log file cut to the window."""

import json
import os

import pytest

from selftest import HOSTS_DIR

NOW = 1795871820  # 13:17:00 UTC on the day of the reference outputs


def _snapshot(tmp_path, maillog_lines, journal_available=False):
    with open(os.path.join(HOSTS_DIR, "healthy-debian12.json"), encoding="utf-8") as handle:
        doc = json.load(handle)
    for record in doc["evidence"]:
        if record["probe"] == "journal" and not journal_available:
            record.update(exit_status=1, stdout="", stderr="No journal files were found.\n")
        if record["probe"] == "maillog":
            record.update(exit_status=0, stderr="",
                          stdout=f"now={NOW} +0000\n" + "".join(line + "\n" for line in maillog_lines))
    path = tmp_path / "host.json"
    path.write_text(json.dumps(doc))
    return f"--hosts=snapshot://{path}"


OLD_FATAL = "Nov 28 09:00:01 selinux-vm postfix/master[551]: fatal: bind 0.0.0.0 port 25: Address already in use"
NEW_FATAL = "Nov 28 13:15:02 selinux-vm postfix/qmgr[1020]: fatal: scan_dir_push: open directory deferred: Permission denied"
QUIET = "Nov 28 13:16:00 selinux-vm postfix/pickup[1019]: 4155253AD: uid=0 from=<root>"


@pytest.mark.parametrize("lines, since, outcome", [
    ([OLD_FATAL, QUIET], "recent", "pass"),          # hours old: outside the 10-minute window
    ([OLD_FATAL, NEW_FATAL, QUIET], "recent", "fail"),
    ([OLD_FATAL, QUIET], "today", "fail"),           # a wider window sees it
])
def test_mail_log_file_is_cut_to_the_window(suite, tmp_path, lines, since, outcome):
    run = suite(_snapshot(tmp_path, lines), "--profile=debian12", f"--avc-since={since}", "-k", "LOG-001")
    record = run.record("LOG-001")
    assert record["outcome"] == outcome, record["message"]
    if outcome == "fail":
        assert "in the mail log" in record["message"]
