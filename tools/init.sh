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
while read -r name cmd; do
	[ -n "$name" ] || continue
	echo "RVMX-BEGIN $name"
	start=$(cut -d' ' -f1 /proc/uptime)
	(cd /tests && sh -c "$cmd")
	rc=$?
	echo "RVMX-END $name rc=$rc start=$start end=$(cut -d' ' -f1 /proc/uptime)"
done < /etc/rvmx-run
echo "RVMX-DMESG-BEGIN"
dmesg
echo "RVMX-DMESG-END"
echo "RVMX-POWEROFF"
poweroff -f
