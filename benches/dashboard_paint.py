"""Times the dashboard's first paint in a headless Chromium already listening for DevTools, then
counts the bytes its steady refresh moves.

Usage: dashboard_paint.py DEVTOOLS_URL PAGE_URL VMS RUNS STEADY_SECONDS (benches/dashboard_paint.sh
runs it).
The standard library only: a minimal WebSocket client (RFC 6455, text frames) for the protocol.
"""

import base64
import json
import os
import socket
import statistics
import struct
import sys
import time
import urllib.parse
import urllib.request

# Installed before the page's own scripts: the first frame after the table holds its first page
# of VMs and the VMs tile its count, on the page's clock (ms since navigation started).
WATCH = """
new MutationObserver((changes, observer) => {
  const rows = document.querySelectorAll('#vm-table tbody tr[data-uuid]').length;
  const tile = document.querySelector('#tile-vms .value');
  if (rows < Math.min(100, %d) || !tile || tile.textContent === '—') return;
  observer.disconnect();
  requestAnimationFrame(() => setTimeout(() => { window.__tablePaint = performance.now(); }));
}).observe(document, { childList: true, subtree: true, characterData: true });
"""


class DevTools:
    def __init__(self, ws_url):
        url = urllib.parse.urlparse(ws_url)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(head.decode(errors="replace"))
        self.next_id = 0

    def _send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        header = struct.pack("!B", 0x81)
        if n < 126:
            header += struct.pack("!B", 0x80 | n)
        elif n < 65536:
            header += struct.pack("!BH", 0x80 | 126, n)
        else:
            header += struct.pack("!BQ", 0x80 | 127, n)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise RuntimeError("DevTools closed the connection")
            data += chunk
        return data

    def _receive(self):
        message = b""
        while True:
            first, second = self._exact(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._exact(8))[0]
            message += self._exact(n)
            if first & 0x80:
                return json.loads(message)

    def call(self, method, **params):
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            answer = self._receive()
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def events(self, seconds):
        """Every message DevTools sends for `seconds`."""
        deadline = time.monotonic() + seconds
        received = []
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                received.append(self._receive())
            except (socket.timeout, TimeoutError):
                break
        self.sock.settimeout(30)
        return received

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


def page_target(devtools):
    for _ in range(50):
        try:
            with urllib.request.urlopen(f"{devtools}/json") as answer:
                targets = json.load(answer)
            return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        except (OSError, StopIteration):
            time.sleep(0.2)
    raise RuntimeError(f"no page target at {devtools}")


def one_load(tools, page):
    tools.call("Page.navigate", url="about:blank")
    tools.call("Page.navigate", url=page)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = tools.evaluate(
            "window.__tablePaint && performance.getEntriesByName('first-contentful-paint')[0]"
            " && {table: window.__tablePaint,"
            " fcp: performance.getEntriesByName('first-contentful-paint')[0].startTime}")
        if shown:
            return shown
        time.sleep(0.05)
    raise RuntimeError("the table was not filled within 30 s")


# Seconds after a load before the steady refresh is counted: its first answers are in.
SETTLE = 15


def steady_bytes(tools, page, seconds):
    """Bytes over the wire (headers and bodies as received) per 5 s while the page stays open
    on the fleet view, after it settled; and the requests counted."""
    tools.call("Network.enable")
    tools.call("Page.navigate", url=page)
    tools.events(SETTLE)
    finished = [e["params"] for e in tools.events(seconds)
                if e.get("method") == "Network.loadingFinished"]
    total = sum(f["encodedDataLength"] for f in finished)
    return total * 5 / seconds, len(finished)


def main():
    devtools, page, vms, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    steady = int(sys.argv[5])
    tools = DevTools(page_target(devtools))
    tools.call("Page.enable")
    tools.call("Page.addScriptToEvaluateOnNewDocument", source=WATCH % vms)
    loads = [one_load(tools, page) for _ in range(runs)]
    table = [load["table"] for load in loads]
    fcp = [load["fcp"] for load in loads]
    print(f"| {vms} VMs, {runs} loads | median | worst |")
    print("|---|---|---|")
    print(f"| first contentful paint (ms) | {statistics.median(fcp):.0f} | {max(fcp):.0f} |")
    print(f"| tiles and first 100 VMs painted (ms) | {statistics.median(table):.0f} "
          f"| {max(table):.0f} |")
    per_5s, requests = steady_bytes(tools, page, steady)
    print(f"| steady refresh over {steady} s ({requests} requests), bytes per 5 s | "
          f"{per_5s:.0f} | |")
    verdict = "met" if max(table) < 1000 else "NOT met"
    print(f"target: first paint with {vms} VMs < 1000 ms: worst {max(table):.0f} ms, {verdict}")
    verdict = "met" if per_5s <= 50_000 else "NOT met"
    print(f"target: steady refresh <= 50 KB per 5 s: {per_5s:.0f} bytes, {verdict}")


if __name__ == "__main__":
    main()
