"""Pairing with the kernel's own gdb scripts (scripts/gdb/linux, vmlinux-gdb.py).

Those scripts treat our stub as QEMU (`monitor info version` answers) and
take the current CPU to be `gdb thread number - 1`.  That holds for the
stub's CPU threads (listed first, CPU 0 first) but not for its task threads,
which come after them.  This module wraps linux.cpus.get_current_cpu so
that on a task thread it returns the CPU the stub gives in the thread's
details (`cpu=`), which makes `$lx_current()`, `$lx_per_cpu(...)` and the
other implicit-CPU helpers use that task's CPU.  CPU threads and other
targets keep the original answer.

It works in either loading order: linux.cpus is patched at once if it is
already imported, and an import hook patches it when vmlinux-gdb.py (or
anything else) imports it later.
"""

import importlib.abc
import sys

from . import target

PATCHED_ATTR = "_vmcore_original_get_current_cpu"


def _wrap(original):
    def get_current_cpu():
        if target.is_vmcore_stub() and not target.is_cpu_thread():
            return target.thread_cpu()
        return original()
    get_current_cpu.__doc__ = ("CPU of the selected thread; on a vmcore-gdbserver task "
                               "thread, the CPU from its details (vmcore lxpair).")
    setattr(get_current_cpu, PATCHED_ATTR, original)
    return get_current_cpu


def patch(module):
    """Wrap module.get_current_cpu once; returns True if it is wrapped now."""
    current = getattr(module, "get_current_cpu", None)
    if current is None:
        return False
    if not hasattr(current, PATCHED_ATTR):
        module.get_current_cpu = _wrap(current)
    return True


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; when linux.cpus is being imported it wraps the
    real loader so the module is patched right after it runs."""

    def find_spec(self, fullname, path, target_module=None):
        if fullname != "linux.cpus":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target_module)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        patch(module)


def install():
    if "linux.cpus" in sys.modules:
        patch(sys.modules["linux.cpus"])
    if not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


install()
