"""A TCP link that can be cut: a proxy between one worker and the database.

Cut, it holds every byte in both directions (nothing is refused, nothing
fails fast: the worker's writes simply hang, as across a network partition);
healed, the held bytes go through, late. So a partitioned run's writes land
only after the job was declared dead and run elsewhere: what fencing is for.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class Link:
    """Listens on a free loopback port and forwards each connection to `target`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.open = threading.Event()
        self.open.set()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="link-accept", daemon=True).start()

    def cut(self) -> None:
        self.open.clear()

    def heal(self) -> None:
        self.open.set()

    def close(self) -> None:
        """Close every connection for real: a socket another thread reads from stays open
        on close() alone, and the server would keep the session (and its locks)."""
        self.open.set()
        for sock in [self.server, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:  # closed
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                self.open.wait()  # cut: hold the bytes until healed
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
