#!/bin/sh
# Last step of `make demo`: serve one sample dump with vmcore-gdbserver and run a scripted gdb
# session against it (threads, a backtrace through the exception frame, one helper of each
# kind), then print the commands to do the same by hand.
# usage: demo.sh --build DIR --cache DIR --run RUN_ID
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=build cache=$HOME/.cache/vmcore-gdbserver run=skb-slab-frag-l5
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--cache) cache=$2; shift 2 ;;
	--run) run=$2; shift 2 ;;
	*) echo "usage: demo.sh --build DIR --cache DIR --run RUN_ID" >&2; exit 2 ;;
	esac
done
server=$(cd "$build" && pwd)/vmcore-gdbserver
[ -x "$server" ] || { echo "demo: $server is not built (make all)" >&2; exit 1; }

manifest=
for m in "$cache"/samples/*/manifest.json; do
	[ -f "$m" ] && jq -e --arg run "$run" '.scenarios[$run]' "$m" >/dev/null && manifest=$m
done
[ -n "$manifest" ] || { echo "demo: no samples manifest in $cache/samples/ lists run $run (make samples SAMPLES_ONLY=$run)" >&2; exit 1; }

# The smallest dump of the run: a kdump-compressed file at the highest dump level.
pick='[.dumps[] | select(.run == $run and .format == "kdump")] | sort_by(-(.dump_level // 0)) | .[0]'
dump_id=$(jq -r --arg run "$run" "$pick | .id // empty" "$manifest")
[ -n "$dump_id" ] || { echo "demo: $manifest has no kdump-compressed dump of run $run" >&2; exit 1; }
dump_files=$(jq -r --arg run "$run" "$pick | .files | join(\" \")" "$manifest")
vmlinux=$(jq -r .vmlinux "$manifest")
panic_string=$(jq -r --arg run "$run" '.scenarios[$run].truth.panic_string' "$manifest")
scenario=$(jq -r --arg run "$run" '.scenarios[$run].scenario' "$manifest")
panic_pid=$(jq -r --arg run "$run" '.scenarios[$run].truth.pid' "$manifest")

log=$(mktemp "${TMPDIR:-/tmp}/vmcore-gdbserver-demo.XXXXXX")
commands=$(mktemp --suffix=.gdb "${TMPDIR:-/tmp}/vmcore-gdbserver-demo.XXXXXX")
server_pid=
cleanup() {
	[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
	rm -f "$log" "$commands"
}
trap cleanup EXIT INT TERM

echo "demo: serving $dump_id ($scenario: \"$panic_string\")"
echo "demo:   $dump_files"
# shellcheck disable=SC2086 # a split dump is several files
"$server" --listen 127.0.0.1:0 --vmlinux "$vmlinux" $dump_files 2>"$log" &
server_pid=$!
port=
waited=0
while [ -z "$port" ]; do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
	[ -n "$port" ] && break
	kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; echo "demo: the server exited" >&2; exit 1; }
	[ $waited -ge 120 ] && { cat "$log" >&2; echo "demo: the server did not start in 120 s" >&2; exit 1; }
	[ $((waited % 5)) -eq 4 ] && echo "demo: waiting for the server ($((waited + 1)) s)"
	sleep 1
	waited=$((waited + 1))
done
echo "demo: listening on 127.0.0.1:$port; starting gdb (loading vmlinux's debug info takes a few seconds)"

# The session, as a gdb command file. The skb step follows the panicking task's socket that
# has data queued to the sk_buff on it, as a user would from the tables vnet prints.
cat >"$commands" <<GDB
set pagination off
set width 0
set confirm off
file $vmlinux
target remote 127.0.0.1:$port
echo \\n=== source gdbscripts/vmcore_gdb.py: KASLR relocation and module symbols (vmcore-setup) ===\\n
source $root/gdbscripts/vmcore_gdb.py
echo \\n=== monitor sys: what was dumped ===\\n
monitor sys
echo \\n=== info threads: CPUs first (thread N = CPU N-1), then tasks ===\\n
info threads
echo \\n=== bt on the panicking CPU, through the exception and system-call frames ===\\n
bt
echo \\n=== vbt: the same with the registers saved at each entry ===\\n
vbt
echo \\n=== per-CPU helper: vpercpu runqueues.nr_running ===\\n
vpercpu runqueues.nr_running
echo \\n=== slab helper: vkmem -s kmalloc-512 ===\\n
vkmem -s kmalloc-512
echo \\n=== virtio helper: vvirtio ===\\n
vvirtio
echo \\n=== skb helpers: vnet -s $panic_pid, vnet -q SOCK, vskb SKB ===\\n
python
import re
table = gdb.execute("vnet -s $panic_pid", to_string=True)
gdb.write(table)
queued = [w[2] for w in (line.split() for line in table.splitlines())
          if len(w) > 3 and w[0].isdigit() and w[-1] != "0"]
if queued:
    queue = gdb.execute("vnet -q 0x" + queued[0], to_string=True)
    gdb.write(queue)
    for skb in re.findall(r"sk_buff (0x[0-9a-f]+)", queue)[:1]:
        gdb.execute("vskb " + skb)
end
GDB

status=0
gdb -q -batch -nx -iex "set index-cache directory $cache/gdb-index" -iex "set index-cache enabled on" \
	-x "$commands" </dev/null || status=$?

cat <<EOF

=== do it yourself ===
  $server --vmlinux $vmlinux \\
      $dump_files
  gdb -ex 'file $vmlinux' -ex 'target remote :1234' \\
      -ex 'source $root/gdbscripts/vmcore_gdb.py'
or, without a port (gdb starts the server on a pipe):
  gdb -ex 'file $vmlinux' \\
      -ex 'target remote | $server --stdio --vmlinux $vmlinux $dump_files' \\
      -ex 'source $root/gdbscripts/vmcore_gdb.py'
then: info threads, thread N, bt, vbt, vpercpu, vkmem, vnet, vskb, vvirtio (help vmcore).
Every sample and its ground truth: $manifest
EOF
exit $status
