# busy: several hundred tasks in different states on 4 CPUs, then a crash.
# vmgs-helper makes sleepers (futex, poll, nanosleep, pipe read), a spinner
# on each CPU but 0, a zombie and a stopped task; the truth module (tasks=1)
# lists every task from inside the panic. Sourced by /init.
vmgs-helper busy 80 > /tmp/busy.out &
i=0
until grep -q "busy ready" /tmp/busy.out; do
	i=$((i + 1))
	[ $i -gt 600 ] && fail "vmgs-helper busy never got ready"
	sleep 0.1
done
say "$(cat /tmp/busy.out)"
sleep 1
taskset 1 sh -c 'echo c > /proc/sysrq-trigger'
