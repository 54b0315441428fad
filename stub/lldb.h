/*
 * LLDB's extensions to the remote protocol (llvm-project lldb/docs/resources/lldbgdbremote.md)
 * that let Debian's `lldb` (`gdb-remote host:port`) identify the target. Everything else LLDB
 * needs (registers through target.xml, Hg + g/p, m, qfThreadInfo) is plain gdb protocol.
 * Packets LLDB probes and the stub leaves unsupported (empty reply; LLDB falls back):
 * QThreadSuffixSupported, QListThreadsInStopReply, jThreadsInfo, qMemoryRegionInfo.
 */
#ifndef STUB_LLDB_H
#define STUB_LLDB_H

#include "handlers.h"
#include "rsp.h"

/* The triple both answers report: the dump is always of an x86_64 Linux kernel. */
#define LLDB_TRIPLE "x86_64-unknown-linux-gnu"

/*
 * qHostInfo: the machine that was dumped. Appends the reply payload (unframed) to reply.
 * Without this answer LLDB 14 does not know the OS and, when it has no executable, scans
 * memory backwards from the pc for a Darwin kernel header (hundreds of reads).
 */
void lldb_host_info(struct target *t, struct rsp_buf *reply);

/* qProcessInfo: the "process" is the kernel, pid 1 as in the thread ids (p1.<tid>). */
void lldb_process_info(struct rsp_buf *reply);

#endif
