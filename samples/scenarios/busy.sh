# busy: several hundred tasks (a few thousand with vmgs.busy_procs=N on the
# kernel command line: N processes of 4 threads) in different states on 4
# CPUs, then a crash. vmgs-helper makes sleepers (futex, poll, nanosleep, pipe
# read), a spinner on each CPU but 0, a zombie and a stopped task; the truth
# module (tasks=1) lists every task from inside the panic. Sourced by /init.
nproc=$(arg vmgs.busy_procs)
vmgs-helper busy "${nproc:-80}" > /tmp/busy.out &
helper=$!
i=0
until grep -q "busy ready" /tmp/busy.out; do
	kill -0 $helper 2>/dev/null || fail "vmgs-helper busy exited"
	i=$((i + 1))
	[ $i -gt 3000 ] && fail "vmgs-helper busy never got ready"
	sleep 0.1
done
say "$(cat /tmp/busy.out)"
sleep 1
taskset 1 sh -c 'echo c > /proc/sysrq-trigger'
