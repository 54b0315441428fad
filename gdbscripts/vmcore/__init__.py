"""vmcore gdb scripts: kernel debugging helpers for vmcore-gdbserver targets.

load() imports every module of the package; each module registers its own
gdb commands, functions and event hooks when imported.  Optional modules
(written separately) are imported only if present.
"""

import importlib

import gdb

# Order matters only for setup, which runs vmcore-setup at load when a
# target is connected: the unwinder and lx pairing must be in place first.
CORE_MODULES = ("target", "orc", "unwind", "lxpair", "setup")
OPTIONAL_MODULES = ("percpu", "slab", "skb", "virtio")


def load():
    """Import all modules; returns the names of optional modules that failed."""
    for name in CORE_MODULES:
        importlib.import_module("." + name, __name__)
    missing = []
    for name in OPTIONAL_MODULES:
        try:
            importlib.import_module("." + name, __name__)
        except ModuleNotFoundError as err:
            if err.name != __name__ + "." + name:
                gdb.write("vmcore: module %s failed to load: %s\n" % (name, err))
            missing.append(name)
        except Exception as err:  # one broken helper must not hide the others
            gdb.write("vmcore: module %s failed to load: %s\n" % (name, err))
            missing.append(name)
    return missing
