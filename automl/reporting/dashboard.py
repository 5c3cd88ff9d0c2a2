"""The Optuna dashboard on a study's storage and artifact store, served until Ctrl-C.

optuna-dashboard reads the study straight from its storage, so everything the search records
shows up without conversion: genes as params (categorical distributions), FLOPs, params,
seconds and accelerators as user attributes, weights as downloadable artifacts, and the two
objectives (named via ``set_metric_names``) in its Pareto-front plot.

We serve its WSGI app with the standard library's server, as ``optuna-dashboard`` itself does,
but threaded (one idle or slow client must not freeze the page for everyone) and with the
socket bound by us: a busy port or a bad host is a one-line error, port 0 picks a free port,
and :meth:`Dashboard.stop` ends it from another thread (tests) while Ctrl-C ends it from the
terminal.

optuna-dashboard has no login and its API can delete studies, trials and their weights. So it
listens on the loopback interface unless ``allow_remote`` is given, and served to the network it
is read-only - every write method refused in front of optuna-dashboard - unless
``allow_writes`` is given too.
"""

from __future__ import annotations

import ipaddress
import signal
import socketserver
import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from automl.core.errors import AutomlError
from automl.store.study import StudyStore, open_storage

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_only(app: Callable) -> Callable:
    """A WSGI middleware that answers 403 to every write method and passes reads to ``app``."""

    def guarded(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET").upper() in WRITE_METHODS:
            body = b"read-only dashboard: restart it with --allow-writes to change the study\n"
            start_response("403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return guarded


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: the terminal shows the URL and nothing else."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
        pass


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    """One thread per connection (daemon threads: an idle client cannot hold up Ctrl-C); a
    browser that closes a connection early is not an error worth a traceback."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class Dashboard:
    """optuna-dashboard for one study, bound on construction (so errors come before serving)."""

    def __init__(self, store: StudyStore, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 allow_remote: bool = False, allow_writes: bool = False) -> None:
        import optuna_dashboard

        if store.url == "memory":
            raise AutomlError("an in-memory study cannot be shown in the dashboard; use a storage URL")
        if not 0 <= port <= 65535:
            raise AutomlError(f"--port must be between 0 and 65535, got {port}")
        if not is_loopback(host) and not allow_remote:
            raise AutomlError(f"--host {host} exposes the dashboard (no login) to the network; add --allow-remote "
                              "to serve it read-only there")
        self.store = store
        self.remote = not is_loopback(host)
        self.read_only = self.remote and not allow_writes
        artifact_store = None
        if store.artifacts_dir is not None and store.artifacts_dir.is_dir():
            from optuna.artifacts import FileSystemArtifactStore

            artifact_store = FileSystemArtifactStore(str(store.artifacts_dir))
        app = optuna_dashboard.wsgi(open_storage(store.url, must_exist=True), artifact_store=artifact_store)
        if self.read_only:
            app = read_only(app)
        try:
            self.server: WSGIServer = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
        except OSError as error:
            reason = error.strerror or str(error)
            raise AutomlError(f"cannot serve the dashboard on {host}:{port}: {reason}") from None
        self.host = host
        self.port = self.server.server_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where the study's page is (the dashboard numbers studies by their storage id)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/dashboard/studies/{self.store.study_id}"

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve until Ctrl-C, SIGTERM or :meth:`stop`; returns normally in every case.

        In the main thread Ctrl-C is caught by a signal handler that asks the server loop to
        finish rather than raised as KeyboardInterrupt: wsgiref's request handler swallows
        every exception, so an interrupt that lands while a request is served would be lost.
        """
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                previous[number] = signal.signal(number, self._interrupted)
        try:
            self.server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            self.server.server_close()

    def _interrupted(self, signum, frame) -> None:
        # shutdown() waits for the loop to end, so it must run outside the loop's thread
        threading.Thread(target=self.server.shutdown, daemon=True).start()

    def start(self) -> Dashboard:
        """Serve from a background thread (for tests and notebooks)."""
        self._thread = threading.Thread(target=self.serve_forever, name="automl-dashboard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        else:
            self.server.server_close()

    def __enter__(self) -> Dashboard:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
