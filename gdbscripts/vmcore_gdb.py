"""Entry point: `source gdbscripts/vmcore_gdb.py` in gdb loads every helper.

It adds this directory to sys.path, imports the vmcore package and its
modules (setup, ORC unwinder, lx-* pairing, and the slab/skb/virtio/percpu
helpers when present), then runs vmcore-setup if a target is connected.
Sourcing it again is harmless.  `help vmcore` lists the commands.
"""

import os
import sys

import gdb

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import vmcore  # noqa: E402

vmcore.load()
vmcore.setup.on_source()
