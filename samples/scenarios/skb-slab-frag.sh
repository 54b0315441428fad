# skb-slab-frag: a loopback TCP pair; the module queues an skb whose frag is
# a kmalloc-512 object, and the reader's copy to user space trips hardened
# usercopy. Sourced by /init.
insmod /scenarios/vmgs_skb.ko || fail "insmod vmgs_skb"
ip link set lo up
taskset 2 vmgs-helper skbpair /proc/vmgs_skb
