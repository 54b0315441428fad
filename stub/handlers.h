/*
 * What packets mean: a table of handlers, one per packet name, run against the served target
 * (shared, read-only dump) and one client's session state.
 */
#ifndef STUB_HANDLERS_H
#define STUB_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../memmodel/kernel.h"
#include "rsp.h"
#include "threads.h"

/* What all clients share: the dump, its kernel and the thread list. */
struct target {
	struct kernel *kernel;     /* NULL: nothing to serve (fuzzing); every request answers an error */
	const char *vmlinux;       /* path served by qXfer:exec-file:read, NULL if none */
	enum tasks_mode tasks;
	bool threads_built;
	struct thread_list threads;
	char threads_warning[256]; /* why task threads are missing, "" if they are not */
	bool debug;                /* log packets and errors on stderr */
	/*
	 * Where memory reads land before they are encoded, kept across requests: a fresh block per
	 * request is handed back to the kernel on free and page-faulted in again by the next one.
	 */
	uint8_t *read_buf;
};

void target_init(struct target *t, struct kernel *k, const char *vmlinux, enum tasks_mode tasks);
void target_free(struct target *t);
/* The thread list, built on first use. */
struct thread_list *target_threads(struct target *t);

/* One client's state. */
struct session {
	uint64_t g_tid;           /* thread for registers and memory (Hg); 0 = the stop thread */
	uint64_t c_tid;           /* thread for resume (Hc) */
	bool no_ack;
	bool phys_mode;           /* Qqemu.PhyMemMode:1 */
	bool zero_excluded;
	bool error_messages;      /* client sent error-message+: errors as E.<text> */
	bool binary_upload;       /* client sent binary-upload+: `x` replies start with 'b' */
	bool ended;               /* D or k: close once the reply is out */
	char last_error[512];     /* why the last request failed, for `monitor last-error` */
};

void session_init(struct session *s, bool zero_excluded);
/* The thread whose registers and page tables a session's requests use (Hg, else the stop thread). */
struct stub_thread *session_thread(struct target *t, struct session *s);

/*
 * Handle one packet payload (unescaped, len bytes, NUL-terminated). Appends the framed
 * reply packet(s) to out. Never fails: bad input gets an error reply.
 */
void handle_packet(struct target *t, struct session *s, const char *pkt, size_t len,
		   struct rsp_buf *out);

#endif
