/*
 * LLDB's extensions to the remote protocol (llvm-project lldb/docs/resources/lldbgdbremote.md)
 * that let Debian's `lldb` (`gdb-remote host:port`) identify the target. Everything else LLDB
 * needs (registers through target.xml, Hg + g/p, m, qfThreadInfo) is plain gdb protocol.
 * Packets LLDB probes and we leave unsupported (empty reply, LLDB falls back):
 * QThreadSuffixSupported, QListThreadsInStopReply, jThreadsInfo, qMemoryRegionInfo.
 */
#ifndef STUB_LLDB_H
#define STUB_LLDB_H

#include "handlers.h"
#include "rsp.h"

/* The triple both answers report: the dump is always an x86_64 Linux kernel. */
#define LLDB_TRIPLE "x86_64-unknown-linux-gnu"

/*
 * qHostInfo: the machine that was dumped. Without it LLDB 14 does not know the OS and, when it
 * has no executable, scans memory backwards from the pc for a Darwin kernel header (hundreds
 * of reads). `args` is the text after the packet name (unused: the packet has none).
 */
void lldb_host_info(struct target *t, struct session *s, const char *args, struct rsp_buf *out);

/* qProcessInfo: the "process" is the kernel, pid 1 as in the thread ids (p1.<tid>). */
void lldb_process_info(struct target *t, struct session *s, const char *args, struct rsp_buf *out);

#endif
