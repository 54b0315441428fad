"""What the ORC unwinder keeps between frames and threads (gdbscripts/vmcore/unwind.py: stack
blocks, registers carried to the caller, FrameLines and its argument memo; orc.py: lookups per
ip) changes nothing gdb prints: on real dumps, every backtrace, argument, local and unwound
register is the same as with exact-size reads, nothing kept, and gdb's stock FrameDecorator."""
import pytest

from gdbscripts_common import frame_functions, run_sections

UNCACHED = '''\
import gdb
from gdb.FrameDecorator import FrameDecorator
from vmcore import orc, target, unwind


class Forgetful(dict):
    """A memo that keeps nothing."""

    def __setitem__(self, key, value):
        pass


class ExactReads:
    """Every read of the unwinder at the size it asks for."""

    def read(self, addr, size):
        return target.read(addr, size)

    def read_u64(self, addr):
        return target.read_u64(addr)

    def clear(self):
        pass


unwind.UNWINDER.carried = Forgetful()
unwind.UNWINDER.stack = ExactReads()
orc.TABLES.found = Forgetful()
unwind.FrameLines = lambda frame, pc, args_memo: FrameDecorator(frame)
gdb.invalidate_cached_frames()
'''

REGISTERS = "info registers rip rsp rbp gs_base fs_base"


def backtraces(first_task):
    return ["thread apply all bt",
            f"thread apply 1-{first_task + 20} bt full",
            "thread apply all bt -frame-arguments all -entry-values both 4"]


def registers(first_task):
    """Registers unwound into callers: a CPU thread's and a sleeping task's."""
    return ["thread 1", "frame 5", REGISTERS,
            f"thread {first_task + 10}", "frame 2", REGISTERS, "frame 3", REGISTERS]


def differences(a, b):
    return "\n".join(f"cached:   {x}\nuncached: {y}"
                     for x, y in zip(a.splitlines(), b.splitlines()) if x != y)[:4000]


@pytest.mark.parametrize("capture", ["kdump", "qemu"])
def test_unwinder_caches_change_no_output(samples, capture, tmp_path):
    found = samples.dumps(scenario="busy", capture=capture, format="elf")
    if not found:
        pytest.skip(f"no busy {capture} dump in the samples yet")
    dump = found[0]
    first_task = samples.truth(dump)["nr_cpus"] + 1
    script = tmp_path / "uncached.py"
    script.write_text(UNCACHED)
    out = run_sections(samples, dump, [("bt", backtraces(first_task)),
                                       ("regs", registers(first_task)),
                                       ("uncached", [f"source {script}"]),
                                       ("bt_uncached", backtraces(first_task)),
                                       ("regs_uncached", registers(first_task))],
                       extra_args=("--tasks=all",), timeout=900)
    assert "Python Exception" not in out["_all"], out["_all"][-3000:]
    assert "Error while executing" not in out["_all"], out["_all"][-3000:]
    bt, regs = out["bt"], out["regs"]
    # The runs did real work: many threads, each ending at an entry, no end marker.
    assert bt.count("\nThread ") > 200, bt[-2000:]
    names = frame_functions(bt)
    assert names.count("entry_SYSCALL_64") > 20 and "__schedule" in names, bt[-2000:]
    assert "0x0000000000000000 in" not in bt, bt[-2000:]
    assert regs.count("gs_base ") == 3 and regs.count("rbp ") == 3, regs
    assert bt == out["bt_uncached"], differences(bt, out["bt_uncached"])
    assert regs == out["regs_uncached"], differences(regs, out["regs_uncached"])
