#!/bin/sh
# The dummy_hcd + configfs Loopback gadget (usb-lab.md): real bulk I/O without hardware.
#   gadget.sh setup VID PID SERIAL   (hex ids like 0x1209; only while unplugged)
#   gadget.sh plug | unplug | state
# soft_connect does not re-enumerate (-71), so plug/unplug bind and unbind the UDC.
set -e
G=/sys/kernel/config/usb_gadget/lab
case "$1" in
setup)
  [ -e "$G/UDC" ] && [ -n "$(cat "$G/UDC")" ] && echo "" > "$G/UDC"
  mkdir -p "$G/strings/0x409" "$G/configs/c.1/strings/0x409" "$G/functions/Loopback.0"
  echo "$2" > "$G/idVendor"
  echo "$3" > "$G/idProduct"
  echo "$4" > "$G/strings/0x409/serialnumber"
  echo replug-lab > "$G/strings/0x409/manufacturer"
  echo loopback > "$G/strings/0x409/product"
  echo loopback > "$G/configs/c.1/strings/0x409/configuration"
  [ -e "$G/configs/c.1/Loopback.0" ] || ln -s "$G/functions/Loopback.0" "$G/configs/c.1/"
  ;;
plug) echo dummy_udc.0 > "$G/UDC" ;;
unplug) echo "" > "$G/UDC" ;;
state) cat "$G/UDC" ;;
*) echo "usage: $0 setup VID PID SERIAL | plug | unplug | state" >&2; exit 2 ;;
esac
