#!/bin/sh
# Runs "$@" as a container would see the machine with
#   docker run --privileged -v /dev/bus/usb:/dev/bus/usb   (plus its own network namespace)
# Called under `unshare -n -m`: own netns (so udevd's broadcasts never arrive, moby/moby#35359), own mount ns
# with /dev a tmpfs holding only the basic nodes and a bind mount of /dev/bus/usb, a fresh sysfs and an
# empty /run (no /run/udev/control, so libudev's monitor stays off).
set -e
mount --make-rprivate /
mkdir -p /mnt/hostusb
mount --bind /dev/bus/usb /mnt/hostusb
umount -l /dev/pts 2>/dev/null || true
mount -t tmpfs -o mode=755,nosuid tmpfs /dev
node() { mknod -m 666 "/dev/$1" c "$2" "$3"; }
node null 1 3; node zero 1 5; node full 1 7; node random 1 8; node urandom 1 9; node tty 5 0
mkdir -p /dev/pts /dev/shm /dev/bus/usb
mount --move /mnt/hostusb /dev/bus/usb
umount -l /sys
mount -t sysfs sysfs /sys
umount -l /run
mount -t tmpfs tmpfs /run
ip link set lo up
# LAB_NET=N: a veth pair to the guest's root netns (10.99.N.1 there, 10.99.N.2 here) for TCP to a broker;
# made from inside, then one end moved to PID 1's netns. No traffic leaves the VM.
if [ -n "$LAB_NET" ]; then
  # busybox ip ignores "peer name": the peer is the other new link in this (fresh) namespace.
  ip link add "c$LAB_NET" type veth
  peer=$(ls /sys/class/net | grep -v -x -e lo -e "c$LAB_NET" | head -n1)
  ip link set "$peer" name "h$LAB_NET"
  ip link set "h$LAB_NET" netns 1
  nsenter -t 1 -n sh -c "ip addr add 10.99.$LAB_NET.1/30 dev h$LAB_NET && ip link set h$LAB_NET up"
  ip addr add "10.99.$LAB_NET.2/30" dev "c$LAB_NET"
  ip link set "c$LAB_NET" up
fi
# Tell the lab agent the namespaces are ready to be entered (the file is on the shared rootfs).
[ -n "$LAB_READY" ] && touch "$LAB_READY"
exec "$@"
