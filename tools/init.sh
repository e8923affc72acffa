#!/bin/sh
# /init of the emulated host: mount the basics, run each "name command" line
# of /etc/rvmx-run between markers that tools/report.py reads from the
# serial console, dump the kernel log, power off.
/bin/busybox mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
export PATH=/tests:/bin:/sbin
dmesg -n 1
echo "RVMX-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime) cpus=$(grep -c ^processor /proc/cpuinfo)"
# Tests judge the kernel log from here on (boot-time noise comes before).
echo "rvmx-init: tests start" > /dev/kmsg
while read -r name cmd; do
	[ -n "$name" ] || continue
	echo "RVMX-BEGIN $name"
	start=$(cut -d' ' -f1 /proc/uptime)
	(cd /tests && sh -c "$cmd" </dev/console)
	rc=$?
	echo "RVMX-END $name rc=$rc start=$start end=$(cut -d' ' -f1 /proc/uptime)"
done < /etc/rvmx-run
echo "RVMX-DMESG-BEGIN"
dmesg
echo "RVMX-DMESG-END"
echo "RVMX-POWEROFF"
# Let the UART drain (the transmit counter stops moving) before power-off.
last=
for i in $(seq 50); do
	now=$(grep -o 'tx:[0-9]*' /proc/tty/driver/serial 2>/dev/null | head -1)
	[ "$now" = "$last" ] && break
	last=$now
	sleep 0.2
done
poweroff -f
