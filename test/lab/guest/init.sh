#!/bin/busybox sh
# The guest's PID 1: mounts, modules, then the lab agent on the serial console. When the agent exits the VM
# powers off, so QEMU (-no-reboot) exits with it.
/bin/busybox --install -s /bin
export PATH=/usr/bin:/usr/sbin:/bin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
while read -r m; do insmod "$m" 2>/dev/null; done < /lab/modules.order
mount -t configfs configfs /sys/kernel/config 2>/dev/null
# runc puts each container in a cgroup (its device rules are an eBPF program on cgroup v2, as on current
# Docker hosts).
mount -t cgroup2 cgroup2 /sys/fs/cgroup
hostname lab
ip link set lo up
# Printk would interleave with the framed lines; the lab reads the kernel's log from /dev/kmsg instead.
echo 1 > /proc/sys/kernel/printk
# Raw: no echo of the host's commands, no line-length limit, no \n -> \r\n translation.
stty -F /dev/console raw -echo
echo "@@LAB {\"ev\":\"init\",\"uptime\":\"$(cut -d' ' -f1 /proc/uptime)\"}" > /dev/console
cd /lab
node /lab/guest/agent.mjs < /dev/console > /dev/console 2>&1
echo "@@LAB {\"ev\":\"agent-exit\",\"code\":$?}" > /dev/console
poweroff -f
