"""The kernel's own gdb scripts (scripts/gdb of the same release, built by `make scripts_gdb`
from Debian's linux-source) against vmcore-gdbserver: they take it for a QEMU gdbstub."""
import re

from gdbtest import gdb_batch, kaslr_setup, stdio_target


def test_lx_commands(samples, lx_scripts):
    dump = samples.dump(scenario="sysrq")
    truth = samples.truth(dump)
    panic_thread = truth["panic_cpu"] + 1
    out = gdb_batch(stdio_target(dump["files"]), kaslr_setup(samples.vmlinux) + [
        f"source {lx_scripts}",
        f"thread {panic_thread}",
        "lx-ps",
        "echo ==DMESG==\\n", "lx-dmesg",
        "echo ==LSMOD==\\n", "lx-lsmod",
        "echo ==CURRENT==\\n", "p $lx_current().comm", "p $lx_current().pid",
        "echo ==PERCPU==\\n", 'p $lx_per_cpu("current_task") == &$lx_current()',
        "p $lx_per_cpu(\"cpu_number\")",
    ], timeout=600)
    ps, rest = out.split("==DMESG==", 1)
    dmesg, rest = rest.split("==LSMOD==", 1)
    lsmod, rest = rest.split("==CURRENT==", 1)
    current, percpu = rest.split("==PERCPU==", 1)
    # lx-ps: one line per task, the panicking one among them.
    assert re.search(rf"^0x[0-9a-f]+\s+{truth['pid']}\s+{re.escape(truth['comm'])}$", ps, re.M), ps
    assert re.search(r"^0x[0-9a-f]+\s+1\s+\S+$", ps, re.M), ps
    assert truth["panic_string"] in dmesg, dmesg[-2000:]
    assert re.search(r"^0x[0-9a-f]+\s+vmgs_truth\s", lsmod, re.M), lsmod
    assert f'"{truth["comm"]}' in current, current
    assert re.search(rf"^\$\d+ = {truth['pid']}$", current, re.M), current
    assert re.search(r"^\$\d+ = 1$", percpu, re.M), percpu
    assert re.search(rf"^\$\d+ = {truth['panic_cpu']}$", percpu, re.M), percpu
