# Managed by provision: gunicorn settings shared by the backend apps.

# gunicorn 24+ opens a control socket in the working folder, which the app's user cannot
# write (and needs no runtime control); older releases ignore this name.
control_socket_disable = True


def worker_exit(server, worker):
    """Before a worker goes away, serve the connections already queued in the kernel, then
    stop the listening socket itself at once.

    Closing a listener resets every queued connection, and the proxy cannot resend a request
    it has already sent (mod_proxy fails over only when the connect itself fails), so a plain
    stop turns each queued request into a 502. shutdown() stops the socket for every process
    that shares it, so from then on connects are refused and the proxy's balancer moves on to
    the other members. The unit's KillMode=mixed lets the master close its copy first.
    """
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
