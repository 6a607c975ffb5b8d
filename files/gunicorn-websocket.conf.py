# Managed by provision: gunicorn settings for a backend app behind a WebSocket route (the others
# keep gunicorn.conf.py's sync worker).

# gunicorn 24+ opens a control socket in the working folder, which the app's user cannot
# write (and needs no runtime control); older releases ignore this name.
control_socket_disable = True

# Threads (gunicorn's gthread worker): a WebSocket (the apps' /ws) holds its thread for as long
# as it is open, while the worker's main loop keeps accepting and answering the arbiter. The sync
# worker holds one connection per process and is killed after `timeout` seconds in one request.
worker_class = "gthread"
threads = 16
# No keep-alive towards the proxy: each answer closes its connection, as the sync worker's do.
# mod_proxy keeps backend connections for reuse; gthread closes idle ones after `keepalive` seconds
# (default 2) and when it stops, and a request the proxy sends on a connection the app has just
# closed fails (a 502, and the member is put in error). With keepalive 0, gthread forces
# "Connection: close" on every answer (gunicorn/workers/gthread.py, handle_request, 21.2 and 27).
keepalive = 0


def post_worker_init(worker):
    """On SIGTERM, stop accepting, serve the connections already queued in the kernel, then stop
    the listening socket itself at once.

    Closing a listener resets every queued connection, and the proxy cannot resend a request
    it has already sent (mod_proxy fails over only when the connect itself fails), so a plain
    stop turns each queued request into a 502. shutdown() stops the socket for every process
    that shares it, so from then on connects are refused and the proxy's balancer moves on to
    the other members. The unit's KillMode=mixed lets the master close its copy first.
    The gthread worker closes its listeners before worker_exit runs, hence the SIGTERM handler.
    Measured (2 workers, 20 clients on loopback, SIGTERM to the master): without it 12-20
    connections reset per stop; with it none on gunicorn 27, and 0-1 on 21.2 (Python 3.6), whose
    loop drops a connection accepted but not read yet when it ends.
    """
    import signal
    import socket
    from gunicorn.workers.sync import SyncWorker

    class Serve(SyncWorker):
        """The sync worker's accept-and-answer, on this worker's own state."""
        def __init__(self, state):
            self.__dict__ = state

    stop = worker.handle_exit

    def drain_then_stop(sig, frame):
        stop(sig, frame)
        if hasattr(worker, "set_accept_enabled"):       # gunicorn 22+
            worker.set_accept_enabled(False)
        else:                                           # gunicorn 21.2 (Python 3.6)
            for listener in worker.sockets:
                try:
                    worker.poller.unregister(listener)
                except (KeyError, ValueError):
                    pass
        serve = Serve(worker.__dict__)
        for listener in worker.sockets:
            listener.setblocking(False)
            while True:
                try:
                    serve.accept(listener)
                except OSError:     # BlockingIOError: nothing left in the queue
                    break
            try:
                listener.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    signal.signal(signal.SIGTERM, drain_then_stop)
