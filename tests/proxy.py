"""A TCP proxy in front of a real server, so a test can take the server away (or slow it
down) from the application's point of view without touching the server itself."""
from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit, urlunsplit

HOLD_LIMIT = 30.0  # seconds


class TcpProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.requests = 0  # chunks the application sent to the server
        self.replies = 0   # chunks of the server's replies passed on to the application
        self._passing = threading.Event()  # cleared by `hold`: replies wait until `release`
        self._passing.set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._running = True
        self._refusing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._running:
                client.close()
                return
            if self._refusing:  # as a server that is restarting: the connection is dropped at once
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            for a, b, to_client in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pipe, args=(a, b, to_client), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, to_client: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if to_client:  # held replies go through after HOLD_LIMIT at the latest, so that an
                    # application that waited for them fails its test instead of hanging it
                    self._passing.wait(HOLD_LIMIT)
                    self.replies += 1
                else:
                    self.requests += 1
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.close()
                except OSError:
                    pass

    def hold(self) -> None:
        """The server turns slow: its replies are held until `release` (or HOLD_LIMIT).
        Requests still reach it and are counted."""
        self._passing.clear()

    def release(self) -> None:
        """The held replies, and every later one, go through."""
        self._passing.set()

    def cut(self) -> None:
        """The server goes away (a restart, a failover): open connections are cut and new
        ones are dropped until `restore`."""
        self._refusing = True
        self._close_open()

    def restore(self) -> None:
        self._refusing = False

    def _close_open(self) -> None:
        sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def stop(self) -> None:
        """Refuse new connections and cut the open ones: the server seems gone."""
        self._running = False
        self._passing.set()
        self._listener.close()
        self._close_open()


def proxy_for(url: str) -> tuple[TcpProxy, str]:
    """A proxy in front of the server of `url` (redis://… or a SQLAlchemy database URL) and
    the same URL — same database, same Redis db — through the proxy."""
    if url.startswith("redis"):
        parts = urlsplit(url)
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
        auth = parts.netloc.rpartition("@")[0]
        netloc = (auth + "@" if auth else "") + f"127.0.0.1:{proxy.port}"
        return proxy, urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    from sqlalchemy import make_url

    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    return proxy, parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
