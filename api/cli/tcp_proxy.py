"""A loopback TCP proxy that can be cut and restored: the service behind it 'goes down' for its clients only.

Used by `twinning bench load` and the fault tests (tests/faults/)."""

from __future__ import annotations

import contextlib
import socket
import threading


class Proxy:
    """Forwards 127.0.0.1:<port> to ``target``; :meth:`cut` closes every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, scheme: str, path: str = "") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()  # refused as soon as it connects
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)  # the timeout was for connecting: an idle connection must stay open
            pair = [client, upstream]
            with self._lock:
                self._conns += pair
            left = [2]  # pipes of this pair still running; the last one closes both sockets
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b, pair, left), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, pair: list[socket.socket], left: list[int]) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            # Sockets are shut down (which wakes the other pipe) and closed only here, under the lock, and closed
            # once: closing a socket another thread may still shut down would let that shutdown hit whatever
            # connection reuses the file descriptor (another proxy's, say).
            with self._lock:
                for s in pair:
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)
                left[0] -= 1
                if left[0] == 0:
                    for s in pair:
                        if s in self._conns:
                            self._conns.remove(s)
                        s.close()

    def cut(self) -> None:
        """Refuse new connections and break the open ones (their pipes close them)."""
        self.up = False
        with self._lock:
            for s in self._conns:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()
