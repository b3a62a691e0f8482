"""A small headless-Chromium driver over the DevTools protocol, standard library only.

Used by the project's browser tests and the report benchmark (and handy for screenshots of a
report): it starts the system's Chromium (Debian's `chromium` package) with
`--remote-debugging-pipe`, so DevTools messages travel over two pipes (fd 3: to Chromium,
fd 4: from it, NUL-separated JSON) — no websocket, no downloaded browser, no extra Python package.

    with Chromium() as browser:
        page = browser.new_page(width=1280, height=900)
        page.navigate("file:///.../compliance.html")
        title = page.evaluate("document.title")
        page.screenshot("/tmp/report.png")
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from typing import Any

# Debian's /usr/bin/chromium is a shell launcher that adds desktop flags and extensions; the
# binary behind it is all a headless run needs.
CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome",
              "google-chrome-stable")
FLAGS = ("--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--disable-dev-shm-usage", "--remote-debugging-pipe")


class BrowserError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """The Chromium executable ($CHROMIUM overrides), or None."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return shutil.which(explicit) or (explicit if os.access(explicit, os.X_OK) else None)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _high_pipe() -> tuple[int, int]:
    """A close-on-exec pipe whose fds are >= 10, so dup2 onto 3 and 4 cannot clobber them."""
    read, write = os.pipe()
    high = fcntl.fcntl(read, fcntl.F_DUPFD_CLOEXEC, 10), fcntl.fcntl(write, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(read)
    os.close(write)
    return high


class Chromium:
    """One headless Chromium process, driven over its DevTools pipe."""

    def __init__(self, executable: str | None = None, timeout: float = 30.0, extra_flags: tuple[str, ...] = ()):
        self.executable = executable or find_chromium()
        if not self.executable:
            raise BrowserError("no Chromium found (Debian: apt-get install chromium)")
        self.timeout = timeout
        self.extra_flags = extra_flags
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self.proc: subprocess.Popen | None = None
        self.profile_dir = ""

    # ------------------------------------------------------------------ process
    def __enter__(self) -> Chromium:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> None:
        self.profile_dir = tempfile.mkdtemp(prefix="pfc-chromium-")
        # Chromium's chatter goes to a file: a pipe nobody reads would fill and stall it.
        self._log = open(os.path.join(self.profile_dir, "chromium.log"), "wb")
        to_chrome_r, self._to_chrome = _high_pipe()
        self._from_chrome, from_chrome_w = _high_pipe()
        flags = [*FLAGS, f"--user-data-dir={self.profile_dir}", *self.extra_flags]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        def pipes_on_3_and_4() -> None:  # in the child, before exec: Chromium's DevTools pipe fds
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        # Python's own fds are not inheritable (PEP 446): only 0-2 and the two dup2'ed ones reach Chromium.
        self.proc = subprocess.Popen([self.executable, *flags, "about:blank"], preexec_fn=pipes_on_3_and_4,
                                     close_fds=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._log)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.send("Browser.getVersion")

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
        self.proc = None
        shutil.rmtree(self.profile_dir, ignore_errors=True)

    # ------------------------------------------------------------------ protocol
    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise BrowserError(f"Chromium exited (status {self.proc.poll() if self.proc else None}) before "
                               f"{method}: {self.log_tail()}") from None
        wanted = self._next_id
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read(deadline, f"reply to {method}")
            if reply.get("id") == wanted:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def wait_event(self, method: str, session: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method and (session is None or event.get("sessionId") == session):
                    del self._events[index]
                    return event.get("params", {})
            self._events.append(self._read(deadline, f"event {method}"))

    def _read(self, deadline: float, what: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"Chromium: timed out waiting for {what}")
            ready, _, _ = select.select([self._from_chrome], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                err = self.log_tail()
                raise BrowserError(f"Chromium exited while waiting for {what}: {err.strip()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, limit: int = 2000) -> str:
        try:
            with open(os.path.join(self.profile_dir, "chromium.log"), "rb") as handle:
                return handle.read().decode(errors="replace")[-limit:]
        except OSError:
            return ""

    def new_page(self, width: int = 1280, height: int = 900) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, target)
        page.send("Page.enable")
        page.send("Runtime.enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page


class Page:
    def __init__(self, browser: Chromium, session: str, target: str):
        self.browser = browser
        self.session = session
        self.target = target

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def navigate(self, url: str, timeout: float | None = None) -> None:
        """Load `url` and wait for its load event."""
        self.browser._events = [e for e in self.browser._events if e.get("method") != "Page.loadEventFired"]
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"navigate {url}: {result['errorText']}")
        self.browser.wait_event("Page.loadEventFired", session=self.session, timeout=timeout)

    def click_and_wait_load(self, selector: str, timeout: float | None = None) -> None:
        """Click what navigates (a link) and wait for the new document's load event."""
        self.browser._events = [e for e in self.browser._events if e.get("method") != "Page.loadEventFired"]
        self.click(selector)
        self.browser.wait_event("Page.loadEventFired", session=self.session, timeout=timeout)

    def add_init_script(self, source: str) -> None:
        """Run `source` in every document before its own scripts."""
        self.send("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """The value of a JavaScript expression (promises awaited), JSON-serialisable."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript error: {text}")
        return result.get("result", {}).get("value")

    def click(self, selector: str) -> None:
        found = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                              f"if (!e) return false; e.click(); return true; }})()")
        if not found:
            raise BrowserError(f"no element matches {selector}")

    def screenshot(self, path: str, full_page: bool = False, clip_height: int | None = None) -> str:
        params: dict[str, Any] = {"format": "png"}
        if full_page or clip_height:
            width, height = self.evaluate("[document.documentElement.scrollWidth, "
                                          "document.documentElement.scrollHeight]")
            height = min(height, clip_height) if clip_height else height
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        data = self.send("Page.captureScreenshot", params)["data"]
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(data))
        return path
