"""The bench job, as a pyinfra user writes it: operations compared with facts, changes chained
with _if. Run: pyinfra inventory.py deploy.py -y (the runner writes inventory.py)."""
from pathlib import Path

from pyinfra import host
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

HERE = Path(__file__).resolve().parent.parent

if "backends" in host.groups:
    apt.packages(name="Flask from Debian", packages=["python3-flask"], update=True, cache_time=3600)
    files.directory(name="App folder", path="/opt/peer", mode="755")
    app = files.put(name="App", src=str(HERE / "app.py"), dest="/opt/peer/app.py", mode="644")
    for a in host.data.apps:
        service = f"peer-app-{a['name']}"
        unit = files.template(name=f"Unit {service}", src=str(HERE / "app.service.j2"),
                              dest=f"/etc/systemd/system/{service}.service", mode="644",
                              app=a, bind=host.data.bind)
        systemd.daemon_reload(name="systemd daemon-reload", _if=unit.did_change)
        systemd.service(name=f"{service} running", service=service, running=True, enabled=True)
        systemd.service(name=f"Restart {service}", service=service, restarted=True, _if=any_changed(app, unit))

if "proxies" in host.groups:
    apt.packages(name="Apache", packages=["apache2"], update=True, cache_time=3600)
    # a2enmod's links, as pyinfra has no Apache module operation
    links = [files.link(name=f"Module {f}", path=f"/etc/apache2/mods-enabled/{f}", target=f"../mods-available/{f}")
             for f in ("proxy.load", "proxy.conf", "proxy_http.load", "proxy_balancer.load",
                       "proxy_balancer.conf", "slotmem_shm.load", "lbmethod_byrequests.load")]
    vhost = files.template(name="Balancer vhost", src=str(HERE / "vhost.conf.j2"),
                           dest="/etc/apache2/sites-available/peer-proxy.conf", mode="644",
                           members=host.data.members)
    site = files.link(name="Vhost enabled", path="/etc/apache2/sites-enabled/peer-proxy.conf",
                      target="../sites-available/peer-proxy.conf")
    default = files.link(name="Default site disabled", path="/etc/apache2/sites-enabled/000-default.conf",
                         present=False)
    systemd.service(name="Apache running", service="apache2", running=True, enabled=True)
    systemd.service(name="Reload apache", service="apache2", reloaded=True,
                    _if=any_changed(*links, vhost, site, default))
