# virtio-bug: some DHCP traffic on eth0 (QEMU's user network answers it),
# then BUG() in a function holding eth0's transmit virtqueue. Sourced by /init.
for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 1 > "$f"; done
ip link set eth0 up || fail "eth0 up"
udhcpc -i eth0 -n -q -t 3 -T 1 -s /bin/true || say "udhcpc got no lease"
taskset 2 insmod /scenarios/vmgs_virtio.ko
