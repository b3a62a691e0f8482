"""The HTML report in a real headless Chromium (Debian's chromium), asserted on the live DOM.

pytest-html 4 builds the table client-side from a JSON blob (data-jsonblob) with innerHTML and
insertAdjacentHTML, and our report.js builds each row's detail from the page's data block: only a
browser shows what a reader gets, and whether a host's output could run script in the reader's
browser. A screenshot of every page tested is saved in the run's report directory.

The failing host's report is also saved as reports/screenshot-report.png (git-ignored).
"""

from __future__ import annotations

import os
import struct

import pytest

import report_snapshots as snaps
from chromium import BrowserError, Chromium, find_chromium
from selftest import N_CHECKS, REPO, run_suite

SETTLE = "new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))"


@pytest.fixture(scope="module")
def browser():
    if not find_chromium():
        message = "no Chromium: apt-get install chromium (scripts/bootstrap.sh --dev installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    holder = _Browser()
    yield holder
    holder.close()


class _Browser:
    """One Chromium for the module, started again if it ever went away between tests."""

    def __init__(self):
        self.chromium = None

    def get(self) -> Chromium:
        if self.chromium is None or not self.chromium.alive:
            if self.chromium is not None:
                self.chromium.close()
            self.chromium = Chromium(timeout=60)
            self.chromium.start()
        return self.chromium

    def new_page(self, **kwargs):
        return self.get().new_page(**kwargs)

    def send(self, *args, **kwargs):
        return self.get().send(*args, **kwargs)

    def close(self):
        if self.chromium is not None:
            self.chromium.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    broken = snaps.make(tmp, "broken", snaps.permissive, snaps.spool_mislabelled, host="mail1.example.test")
    hostile = snaps.make(tmp, "hostile", snaps.hostile, host="evil.example.test")
    healthy = snaps.make(tmp, "healthy", host="mail2.example.test")
    # --postfix-check: the recorded `postfix check` output is shown too (replayed; nothing runs)
    run = run_suite(f"--hosts=snapshot://{broken},snapshot://{hostile},snapshot://{healthy}", "--profile=debian12",
                    "--postfix-check", "--metadata", "ci_branch", "<img src=x onerror=\"document.title='pwned'\">",
                    report_dir=str(tmp / "reports"))
    assert os.path.exists(os.path.join(run.report_dir, "compliance.html")), run.stdout[-3000:]
    run.hosts = {"broken": f"snapshot://{broken}", "hostile": f"snapshot://{hostile}",
                 "healthy": f"snapshot://{healthy}"}
    return run


@pytest.fixture
def page(browser, report):
    page = browser.new_page(width=1280, height=900)
    page.navigate("file://" + os.path.join(report.report_dir, "compliance.html"))
    page.evaluate(SETTLE)
    yield page
    _close(page)


def _close(page) -> None:
    try:
        page.browser.send("Target.closeTarget", {"targetId": page.target})
    except BrowserError:
        pass  # the browser went away: the next test starts another


def _png_size(path: str) -> tuple[int, int]:
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_title_names_profile_time_and_suite_version(page, report):
    title = page.evaluate("document.title")
    assert title.startswith("Postfix/SELinux compliance — profile debian12 — ")
    assert title.endswith(" UTC — suite 0.1.0")
    assert page.evaluate("document.getElementById('title').textContent") == title


def test_per_host_summary(page, report):
    rows = page.evaluate("""[...document.querySelectorAll('#host-summary tbody tr')].map(tr => ({
        host: tr.dataset.host, cells: [...tr.cells].map(td => td.innerText.trim()),
        links: [...tr.querySelectorAll('td.failing a')].map(a => a.textContent)}))""")
    by_host = {row["host"]: row for row in rows}
    assert list(by_host) == [report.hosts["broken"], report.hosts["hostile"], report.hosts["healthy"]]  # worst first
    broken = by_host[report.hosts["broken"]]
    # Host, Profile, Passed, Failed, Errors, Waived, Not applicable, Failing checks
    assert broken["cells"][0].startswith("mail1.example.test")
    assert broken["cells"][2:7] == [str(N_CHECKS - 7), "3", "0", "0", "4"]
    assert broken["links"] == ["AVC-002", "LBL-002", "SEL-001"]  # runbook order
    hostile = by_host[report.hosts["hostile"]]
    assert hostile["cells"][3:5] == ["1", "1"] and "SEL-001" in hostile["links"]
    assert by_host[report.hosts["healthy"]]["cells"][2:5] == [str(N_CHECKS - 4), "0", "0"]
    counts = {(r["host"], r["outcome"]) for r in report.results["results"]}
    assert (report.hosts["hostile"], "error") in counts
    page.screenshot(os.path.join(report.report_dir, "screenshot-summary.png"))


def test_columns_and_outcomes_read_as_such(page, report):
    # One outcome column: pytest-html's Result cell is there (its filters read it) but not shown.
    head = page.evaluate("[...document.querySelectorAll('#results-table thead th')]"
                         ".filter(th => th.offsetParent !== null).map(th => th.textContent)")
    assert head == ["Outcome", "Host", "Check", "Severity", "Runbook section", "Test", "Duration"]
    rows = page.evaluate("""[...document.querySelectorAll('tbody.results-table-row')].map(tb => ({
        outcome: tb.querySelector('.col-outcome b').textContent, check: tb.querySelector('.col-check b').textContent,
        host: tb.querySelector('.col-host').firstChild.textContent, result: tb.querySelector('.col-result').textContent,
        severity: tb.querySelector('.col-severity').innerText, section: tb.querySelector('.col-section').innerText}))""")
    assert len(rows) == 3 * N_CHECKS
    error = [r for r in rows if r["host"] == "evil.example.test" and r["check"] == "SEL-001"][0]
    assert error["outcome"] == "ERROR" and error["result"] == "Error"  # pytest calls it failed; the page does not
    na = [r for r in rows if r["outcome"] == "not applicable"]
    assert na and all(r["result"] == "Skipped" for r in na)
    first = rows[0]  # failures first: high severity, runbook order
    assert (first["outcome"], first["check"], first["severity"], first["section"]) == ("FAIL", "AVC-002", "high",
                                                                                        "Triage")


def test_expanded_row_shows_remediation_rollback_and_evidence(page, report):
    row = ("[...document.querySelectorAll('tbody.results-table-row')].find(tb => "
           "tb.querySelector('.col-check b').textContent === 'SEL-001' && "
           "tb.querySelector('.col-host').firstChild.textContent === 'mail1.example.test')")
    # A failing row of a small report opens expanded, its detail built from the data block.
    detail = page.evaluate(f"""(() => {{ const tb = {row};
        return {{hidden: tb.querySelector('.extras-row').classList.contains('hidden'),
                message: tb.querySelector('.pfc-msg').textContent,
                remediation: tb.querySelector('.pfc-remediation').textContent,
                rollback: tb.querySelector('.pfc-rollback').textContent,
                probes: [...tb.querySelectorAll('.pfc-ev details summary')].map(s => s.textContent)}}; }})()""")
    assert detail["hidden"] is False
    assert detail["message"] == "SELinux is Permissive, expected Enforcing"
    # the host's plan: its step for SEL-001, as the script and the playbook run it
    assert detail["remediation"].startswith("# step 2/4: SELinux enforcing with the default policy"), detail
    assert '[ "$(getenforce)" != Permissive ] || setenforce 1' in detail["remediation"].splitlines()
    assert "setenforce 0" in detail["rollback"]
    assert detail["probes"] == ["getenforce · exit 0"]
    # Open the probe: its command, exit status and output appear.
    page.evaluate(f"{row}.querySelector('.pfc-ev details summary').click()")
    page.evaluate(SETTLE)
    evidence = page.evaluate(f"""(() => {{ const d = {row}.querySelector('.pfc-ev details');
        return {{open: d.open, cmd: d.querySelector('.pfc-cmd').textContent,
                status: d.querySelector('.pfc-status').textContent, out: d.querySelector('.pfc-out').textContent,
                visible: d.querySelector('.pfc-out').getBoundingClientRect().height > 0}}; }})()""")
    assert evidence == {"open": True, "cmd": "$ getenforce", "status": "exit status 0 · 0.01 s",
                        "out": "Permissive\n", "visible": True}
    page.evaluate(f"{row}.scrollIntoView()")
    page.screenshot(os.path.join(report.report_dir, "screenshot-evidence.png"))


def test_collapsed_row_expands_on_click(page, report):
    row = ("[...document.querySelectorAll('tbody.results-table-row')].find(tb => "
           "tb.querySelector('.col-check b').textContent === 'SEL-001' && "
           "tb.querySelector('.col-host').firstChild.textContent === 'mail2.example.test')")
    assert page.evaluate(f"{row}.querySelector('.extras-row').classList.contains('hidden')") is True
    assert page.evaluate(f"{row}.querySelector('.pfc-d').childElementCount") == 0  # not built while collapsed
    page.evaluate(f"{row}.querySelector('.col-outcome').click()")  # pytest-html redraws the table
    page.evaluate(SETTLE)
    assert page.evaluate(f"{row}.querySelector('.extras-row').classList.contains('hidden')") is False
    assert page.evaluate(f"[...{row}.querySelectorAll('.pfc-ev summary')].map(s => s.textContent)") == [
        "getenforce · exit 0"]


def test_hostile_output_stays_text(page, report):
    # Expand everything and open every probe: all hostile strings are now in the page.
    page.click("#show_all_details")
    page.evaluate(SETTLE)
    opened = page.evaluate("""(() => { const s = [...document.querySelectorAll('.pfc-ev details > summary')];
                               s.forEach(x => x.click()); return s.length; })()""")
    assert opened > 100
    page.evaluate("document.getElementById('environment-header').click()")  # the environment table too
    page.evaluate(SETTLE)
    page.evaluate("new Promise(r => setTimeout(r, 300))")  # an onerror would have fired by now
    assert page.evaluate("document.title").startswith("Postfix/SELinux compliance")
    assert "pwned" not in page.evaluate("document.title")
    # No element a host's words made; the one SVG is the suite's roll-up chart (report/rollup.py).
    assert page.evaluate("document.querySelectorAll('img[src=x], svg:not(#rollup-chart), #injected').length") == 0
    assert page.evaluate("[...document.querySelectorAll('script')].map(s => s.type || 'js')") == [
        "application/json", "js", "js"]  # our data block, our script, pytest-html's script: nothing else
    # ...and reads as the host printed it: in getenforce's output, in SVC-005's message, in the environment.
    outputs = page.evaluate("[...document.querySelectorAll('.pfc-out, .pfc-err')].map(p => p.textContent)")
    assert snaps.HOSTILE + "\n" in outputs
    messages = page.evaluate("[...document.querySelectorAll('.pfc-msg')].map(p => p.textContent)")
    assert any("<script>document.title='pwned'</script>" in m for m in messages)
    assert any("<img src=x onerror=\"document.title='pwned'\">" in m for m in messages)
    env = page.evaluate("document.getElementById('environment').innerText")
    assert "<img src=x onerror=\"document.title='pwned'\">" in env
    page.screenshot(os.path.join(report.report_dir, "screenshot-hostile.png"))


WORDS = {"pass": "Passed", "FAIL": "Failed", "ERROR": "Error", "waived": "Skipped", "not applicable": "Skipped"}


@pytest.fixture(scope="module")
def mixed_report(tmp_path_factory):
    """Every outcome: failed checks (one waived), a check that raised in its call phase (hostile: pytest
    says failed), a host that could not be read at all (its checks error in their set-up), checks that do
    not apply, passes."""
    tmp = tmp_path_factory.mktemp("vocabulary")
    broken = snaps.make(tmp, "broken", snaps.permissive, snaps.spool_mislabelled, host="mail1.example.test")
    hostile = snaps.make(tmp, "hostile", snaps.hostile, host="evil.example.test")
    healthy = snaps.make(tmp, "healthy", host="mail2.example.test")
    unreadable = snaps.make(tmp, "unreadable", lambda doc: snaps.set_output(
        doc, "os_release", "", "cat: /etc/os-release: No such file or directory\n", 1), host="mail3.example.test")
    waivers = tmp / "waivers.yaml"
    waivers.write_text('waivers:\n  - check: LBL-002\n    hosts: "mail1*"\n    justification: "CHG-1"\n')
    run = run_suite("--hosts=" + ",".join(f"snapshot://{p}" for p in (broken, hostile, unreadable, healthy)),
                    f"--waivers={waivers}", "--postfix-check", report_dir=str(tmp / "reports"))
    assert run.exit_status == 2, run.stdout[-3000:]
    return run


def test_counters_and_filters_count_the_suites_outcomes(browser, mixed_report):
    """pytest-html's counters and filter boxes (rendered by its script) agree with the suite: a check that could
    not be judged is an error whether it raised in set-up or in its call; Skipped says what it holds; the page
    has one outcome column, no "N tests took" line beside the suite's, and no empty Environment heading."""
    run = mixed_report
    outcomes = [r["outcome"] for r in run.results["results"]]
    count = {o: outcomes.count(o) for o in ("pass", "fail", "error", "waived", "not_applicable")}
    assert all(count.values()), count
    page = browser.new_page(width=1280, height=900)
    try:
        page.navigate("file://" + os.path.join(run.report_dir, "compliance.html"))
        page.evaluate(SETTLE)
        counters = page.evaluate("""Object.fromEntries([...document.querySelectorAll('.filters input')].map(box =>
            [box.dataset.testResult, {text: box.nextElementSibling.textContent, enabled: !box.disabled}]))""")
        assert counters["failed"] == {"text": f"{count['fail']} Failed,", "enabled": True}
        assert counters["error"] == {"text": f"{count['error']} Errors,", "enabled": True}
        assert counters["passed"] == {"text": f"{count['pass']} Passed,", "enabled": True}
        assert counters["skipped"] == {"text": f"{count['waived'] + count['not_applicable']} Skipped ({count['waived']} "
                                               f"waived, {count['not_applicable']} not applicable),", "enabled": True}
        assert counters["xfailed"]["text"] == "0 Expected failures," and not counters["xfailed"]["enabled"]
        # Every row's (hidden) Result word is its outcome's; the visible header has one outcome column.
        rows = "[...document.querySelectorAll('tbody.results-table-row')]"
        shown = page.evaluate(f"{rows}.map(tb => [tb.querySelector('.col-outcome b').textContent, "
                              "tb.querySelector('.col-result').textContent, tb.className])")
        assert len(shown) == len(outcomes)
        assert all(result == WORDS[outcome] and cls.endswith(" " + result.lower()) for outcome, result, cls in shown)
        head = page.evaluate("[...document.querySelectorAll('#results-table thead th')]"
                             ".filter(th => th.offsetParent !== null).map(th => th.textContent)")
        assert head == ["Outcome", "Host", "Check", "Severity", "Runbook section", "Test", "Duration"]
        # Unticking Errors lists every check but those not judged (pytest-html's filter, by the row's word).
        page.click("input[data-test-result=error]")
        page.evaluate(SETTLE)
        left = page.evaluate(f"{rows}.map(tb => tb.querySelector('.col-outcome b').textContent)")
        assert len(left) == len(outcomes) - count["error"] and "ERROR" not in left
        page.click("input[data-test-result=error]")
        page.click("input[data-test-result=failed]")
        page.evaluate(SETTLE)
        left = page.evaluate(f"{rows}.map(tb => tb.querySelector('.col-outcome b').textContent)")
        assert len(left) == len(outcomes) - count["fail"] and "FAIL" not in left and "ERROR" in left
        # One count of the run: the suite's line; pytest-html's "N tests took ..." is not shown.
        summary = page.evaluate("document.querySelector('.summary').innerText")
        assert "tests took" not in summary and f"{len(outcomes)} checks run in " in summary
        # The Environment heading says what it holds; open, it lists the run's suite, profile and hosts first.
        heading = page.evaluate("document.getElementById('environment-header').innerText")
        assert heading.startswith("Environment") and "the suite, profile and hosts of this run" in heading
        page.click("#environment-header")
        page.evaluate(SETTLE)
        env = page.evaluate("[...document.querySelectorAll('#environment tr')].map(tr => tr.cells[0].textContent)")
        assert env[:5] == ["Suite", "Profile", "Hosts", "Checks", "Run"] and "Python" in env
        assert page.evaluate("document.getElementById('environment').rows[2].cells[1].textContent") == "4"
        page.screenshot(os.path.join(run.report_dir, "screenshot-counters.png"))
    finally:
        _close(page)


def test_large_report_opens_on_failing_checks(browser, tmp_path):
    """More than 200 rows: only failing checks are listed at first (fast to open); Passed lists the rest."""
    paths = [snaps.make(tmp_path, f"mail{i}", *((snaps.permissive,) if i == 3 else ()), host=f"mail{i}.example.test")
             for i in range(8)]
    run = run_suite("--hosts=" + ",".join(f"snapshot://{p}" for p in paths), "--profile=debian12",
                    "--postfix-check", report_dir=str(tmp_path / "reports"))
    page = browser.new_page()
    try:
        page.navigate("file://" + os.path.join(run.report_dir, "compliance.html"))
        page.evaluate(SETTLE)
        assert page.evaluate("document.querySelectorAll('tbody.results-table-row').length") == 1
        assert f"{8 * N_CHECKS} checks" in page.evaluate("document.getElementById('pfc-large').textContent")
        assert "visible=passed,skipped,failed,error" in page.evaluate(
            "document.querySelector('#pfc-large a').getAttribute('href')")
        page.click("input[data-test-result=passed]")
        page.evaluate(SETTLE)
        assert page.evaluate("document.querySelectorAll('tbody.results-table-row').length") == 1 + 7 * (N_CHECKS - 4) + (N_CHECKS - 5)  # the failing one, every pass
    finally:
        _close(page)


def test_screenshot_of_a_failing_host(browser, tmp_path):
    """The picture the README shows: the report of a failing host, from a snapshot run (the official
    fixture when it is there), with one probe's evidence open."""
    official = os.path.join(REPO, "fixtures", "hosts", "spool-mislabelled.json")
    if os.path.exists(official):
        spec = "snapshot://fixtures/hosts/spool-mislabelled.json"
    else:
        spec = "snapshot://" + snaps.make(tmp_path, "mail1", snaps.permissive, snaps.spool_mislabelled,
                                          host="mail1.example.test")
    run = run_suite(f"--hosts={spec}", report_dir=str(tmp_path / "reports"))
    page = browser.new_page(width=1200, height=900)
    try:
        page.navigate("file://" + os.path.join(run.report_dir, "compliance.html"))
        page.evaluate(SETTLE)
        page.evaluate("(() => { const d = [...document.querySelectorAll('.pfc-ev details')]"
                      ".find(d => /^(queue_dir_label|avc_denials)/.test(d.textContent)) || document.querySelector('.pfc-ev details');"
                      " d.querySelector('summary').click(); })()")
        page.evaluate(SETTLE)
        shot = page.screenshot(os.path.join(run.report_dir, "screenshot.png"), full_page=True, clip_height=1400)
        width, height = _png_size(shot)
        assert width == 1200 and 600 < height <= 1400
        # Kept under reports/ (git-ignored: the project commits no binaries); the README quotes it as text.
        target = os.path.join(REPO, "reports", "screenshot-report.png")
        page.screenshot(target, full_page=True, clip_height=1400)
        assert os.path.getsize(target) < 300_000
    finally:
        _close(page)
