"""The VM lab: proxy, web1 and web2 as Vagrant VMs on libvirt, from a box built on this machine.

`layout` is the pure plan (addresses, network, box recipe); `box` builds and adds
the box; `libvirt` runs the daemon and owns the network, pool and domains;
`api` brings the lab up and down with the time of each stage.
"""
