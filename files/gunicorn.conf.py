# Managed by provision: gunicorn settings shared by the backend apps.

# gunicorn 24+ opens a control socket in the working folder, which the app's user cannot
# write (and needs no runtime control); older releases ignore this name.
control_socket_disable = True


def post_worker_init(worker):
    """Mark the worker when it is told to stop (SIGTERM: the service stops or restarts)."""
    import signal
    stop = worker.handle_exit

    def stopping(sig, frame):
        worker.provision_stopping = True
        stop(sig, frame)

    signal.signal(signal.SIGTERM, stopping)


def worker_exit(server, worker):
    """Before a worker told to stop goes away, serve the connections already queued in the
    kernel, then stop the listening socket itself at once.

    Closing a listener resets every queued connection, and the proxy cannot resend a request
    it has already sent (mod_proxy fails over only when the connect itself fails), so a plain
    stop turns each queued request into a 502. shutdown() stops the socket for every process
    that shares it, so from then on connects are refused and the proxy's balancer moves on to
    the other members. The unit's KillMode=mixed lets the master close its copy first.
    Only on SIGTERM: a worker that exits for another reason (killed after `timeout` with
    SIGABRT, a crash) is replaced, and its replacement needs the listener; gunicorn also runs
    this hook in the master for a worker already gone, where the mark is never set.
    """
    if not getattr(worker, "provision_stopping", False):
        return
    import socket
    for listener in worker.sockets:
        while True:
            try:
                worker.accept(listener)
            except OSError:     # BlockingIOError: nothing left in the queue
                break
        try:
            listener.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        listener.close()
