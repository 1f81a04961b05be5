"""A real webhook receiver on loopback for the delivery tests: http.server in a thread.

It records every request (headers, body, arrival time), answers from a plan of responses
(status, headers, a hold event to stall on), and deduplicates by ``webhook-id`` the way a
receiver is told to.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None  # wait for this before answering
    delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    def __init__(self, port: int | None = None, plan: list[Reply] | None = None):
        self.port = port or free_port()
        self.plan = list(plan or [])
        self.requests: list[Received] = []
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.path, dict(self.headers.items()), body, time.time())
                    )
                    reply = receiver.plan.pop(0) if receiver.plan else Reply()
                receiver.arrived.set()
                if reply.hold is not None:
                    reply.hold.wait(30)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender is gone (killed mid-request)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        return [r.headers.get("webhook-id") for r in self.requests]

    def unique(self) -> set[str]:
        """What a receiver that deduplicates by webhook-id processed."""
        return set(self.ids())

    def wait_for(self, n: int, timeout: float = 20) -> None:
        deadline = time.time() + timeout
        while len(self.requests) < n:
            if time.time() > deadline:
                raise AssertionError(f"receiver got {len(self.requests)} requests, expected {n}")
            time.sleep(0.02)
