"""Shared by the test_gdbscripts_*.py integration tests: run real gdb with
gdbscripts/vmcore_gdb.py against vmcore-gdbserver serving a sample dump, and
split the output into named sections."""
import os
import re

from gdbtest import ROOT, gdb_batch, stdio_target

SCRIPT = os.path.join(ROOT, "gdbscripts", "vmcore_gdb.py")
SOURCE = f"source {SCRIPT}"


def pick(samples, scenario):
    """A compressed kdump of the scenario if there is one, else any of its dumps."""
    for fmt in ("kdump", "elf"):
        found = samples.dumps(scenario=scenario, format=fmt)
        if found:
            return found[0]
    return samples.dump(scenario=scenario)


def scripts(samples, dump, commands, timeout=600):
    """gdb on the dump through the stub, with the gdb scripts sourced (they run vmcore-setup)."""
    return gdb_batch(stdio_target(dump["files"]), [SOURCE] + list(commands),
                     vmlinux=samples.vmlinux, timeout=timeout)


def run_sections(samples, dump, sections, before=(), after_connect=(SOURCE,),
                 extra_args=("--tasks=none",), timeout=600):
    """Runs gdb once; sections is [(name, [commands])].  Returns {name: output}
    plus "_connect" for what came before the first section."""
    commands = list(after_connect)
    for name, cmds in sections:
        commands.append(f"echo @@{name}@@\\n")
        commands += list(cmds)
    commands.append("echo @@END@@\\n")
    out = gdb_batch(stdio_target(dump["files"], *extra_args), commands, vmlinux=samples.vmlinux,
                    setup=before, timeout=timeout)
    parts = re.split(r"^@@(\w[\w-]*)@@$", out, flags=re.M)
    result = {"_connect": parts[0], "_all": out}
    for i in range(1, len(parts) - 1, 2):
        result[parts[i]] = parts[i + 1]
    for name, _ in sections:
        assert name in result, f"gdb stopped before section {name}:\n{out[-3000:]}"
    return result


FRAME_RE = re.compile(r"^#(\d+)\s+(?:0x[0-9a-f]+\s+in\s+|in\s+)?([A-Za-z_][\w.]*)", re.M)


def frame_functions(bt_text):
    """Function names of `bt` / `vbt` output lines, in order (inline frames too)."""
    return [name for _, name in FRAME_RE.findall(bt_text)]
