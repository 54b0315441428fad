/*
 * Ignore SIGPIPE so a client that disconnects mid-reply does not kill the server. Kept apart
 * because <signal.h> with _GNU_SOURCE defines REG_RAX etc., which collide with memmodel/regs.h.
 */
#ifndef STUB_SIGPIPE_H
#define STUB_SIGPIPE_H

void ignore_sigpipe(void);

#endif
