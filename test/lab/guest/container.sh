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
[ -n "$LAB_NET" ] && sh /lab/guest/veth.sh
# Tell the lab agent the namespaces are ready to be entered (the file is on the shared rootfs).
[ -n "$LAB_READY" ] && touch "$LAB_READY"
exec "$@"
