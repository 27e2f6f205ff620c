#!/bin/busybox sh
# /init of the test VM (tests/vm/prepare.sh packs it): loads the modules listed in
# /mod/order, mounts the host's / read-only (9p tag `hostroot`) at /host with fresh tmpfs
# over the directories programs write to, and the read-write share `out` at /out; then runs
# the shell command in /out/cmd chrooted into /host, with its output in /out/log and its
# exit status in /out/rc, and powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mod/order); do insmod /mod/$m.ko || echo "init: insmod $m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro hostroot /host || echo "init: mounting the host's / failed"
mount -t 9p -o trans=virtio,version=9p2000.L out /out || echo "init: mounting out failed"
# Only directories the host has (a read-only root cannot get new mount points).
for d in tmp run var/tmp var/log var/lib/frr var/run; do
    [ -d /host/$d ] && [ ! -L /host/$d ] && mount -t tmpfs tmpfs /host/$d
done
mount -t proc proc /host/proc; mount -t sysfs sys /host/sys; mount --rbind /dev /host/dev
ip link set lo up
echo "init: kernel $(uname -r)" > /out/log
chroot /host /bin/sh -c "$(cat /out/cmd)" >> /out/log 2>&1; echo $? > /out/rc
sync; poweroff -f
