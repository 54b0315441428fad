/*
 * `monitor` commands (qRcmd): text in, text out. info version answers like QEMU so the kernel's
 * lx-* scripts treat the stub as a QEMU-style target.
 */
#ifndef STUB_MONITOR_H
#define STUB_MONITOR_H

#include <stdbool.h>

#include "handlers.h"
#include "rsp.h"

#define STUB_VERSION "0.1"

/* Run one command line; output text goes to out. Returns false if the command failed. */
bool monitor_run(struct target *t, struct session *s, const char *cmd, struct rsp_buf *out);

/* What `monitor sys` prints: the kernel layer's system report (same as `vmcore-gdbserver info`). */
bool monitor_sys(struct kernel *k, struct rsp_buf *out);

#endif
