#!/bin/sh
# A FunctionFS gadget on dummy_hcd (issue 15's wedging device): configfs gadget "ffs" with one usb_f_fs
# function whose endpoints a userspace program serves (guest/ffs-wedge.mjs) through /dev/ffs-wedge.
#   ffs-gadget.sh setup VID PID SERIAL   (hex ids like 0x1209; only while unplugged; mounts functionfs)
#   ffs-gadget.sh plug | unplug | state
# plug binds the UDC, which FunctionFS allows only once the program has written its descriptors to ep0.
# dummy_hcd has one UDC: the Loopback gadget (gadget.sh) must be unplugged first.
set -e
G=/sys/kernel/config/usb_gadget/ffs
M=/dev/ffs-wedge
case "$1" in
setup)
  [ -e "$G/UDC" ] && [ -n "$(cat "$G/UDC")" ] && echo "" > "$G/UDC"
  mkdir -p "$G/strings/0x409" "$G/configs/c.1/strings/0x409" "$G/functions/ffs.wedge"
  echo "$2" > "$G/idVendor"
  echo "$3" > "$G/idProduct"
  echo "$4" > "$G/strings/0x409/serialnumber"
  echo replug-lab > "$G/strings/0x409/manufacturer"
  echo wedge > "$G/strings/0x409/product"
  echo wedge > "$G/configs/c.1/strings/0x409/configuration"
  [ -e "$G/configs/c.1/ffs.wedge" ] || ln -s "$G/functions/ffs.wedge" "$G/configs/c.1/"
  mkdir -p "$M"
  grep -q " $M functionfs " /proc/mounts || mount -t functionfs wedge "$M"
  ;;
plug) echo dummy_udc.0 > "$G/UDC" ;;
unplug) echo "" > "$G/UDC" ;;
state) cat "$G/UDC" ;;
*) echo "usage: $0 setup VID PID SERIAL | plug | unplug | state" >&2; exit 2 ;;
esac
