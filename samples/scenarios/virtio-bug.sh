# virtio-bug: some DHCP traffic on eth0 (QEMU's user network answers it),
# then BUG() in a function holding eth0's transmit virtqueue. Sourced by /init.
# vmgs.virtio_pings=N sends N echo requests to QEMU's gateway first, enough to
# take the rings past their end (a packed ring's wrap counters then flip).
for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 1 > "$f"; done
ip link set eth0 up || fail "eth0 up"
udhcpc -i eth0 -n -q -t 3 -T 1 -s /bin/true || say "udhcpc got no lease"
pings=$(arg vmgs.virtio_pings)
if [ -n "$pings" ]; then
	ip addr add 10.0.2.15/24 dev eth0 2>/dev/null
	ping -A -q -c "$pings" -w 60 10.0.2.2 || say "ping got fewer replies than $pings"
fi
taskset 2 insmod /scenarios/vmgs_virtio.ko
