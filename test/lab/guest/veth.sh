#!/bin/sh
# Run in a container's network namespace only (/proc must stay the guest's: `netns 1` and nsenter -t 1 mean its init) with LAB_NET=N: a veth pair to the guest's root netns (10.99.N.1 there, 10.99.N.2 here) for TCP to a broker;
# made from inside, then one end moved to PID 1's netns. No traffic leaves the VM.
set -e
# busybox ip ignores "peer name": the peer is the other new link in this (fresh) namespace.
ip link add "c$LAB_NET" type veth
# Listed over netlink (ip), not /sys/class/net: sysfs shows the netns of whoever mounted it.
peer=$(ip -o link | sed -n 's/^[0-9]*: \([^:@]*\).*/\1/p' | grep -v -x -e lo -e "c$LAB_NET" | head -n1)
ip link set "$peer" name "h$LAB_NET"
ip link set "h$LAB_NET" netns 1
nsenter -t 1 -n sh -c "ip addr add 10.99.$LAB_NET.1/30 dev h$LAB_NET && ip link set h$LAB_NET up"
ip addr add "10.99.$LAB_NET.2/30" dev "c$LAB_NET"
ip link set "c$LAB_NET" up

