/*
 * Transports and the event loop: one single-threaded poll() loop serving several clients over
 * TCP (127.0.0.1 by default), or one session on stdin/stdout for `target remote | ...`.
 */
#ifndef STUB_SERVER_H
#define STUB_SERVER_H

#include <stdbool.h>

#include "handlers.h"

struct server_options {
	const char *listen;   /* "HOST:PORT", "[V6]:PORT" or "PORT"; NULL with use_stdio */
	bool use_stdio;
	bool zero_excluded;   /* initial value for each session */
	bool debug;           /* log packets on stderr */
	int max_clients;
};

/* Serve until stdin closes (stdio) or forever (TCP). Returns a process exit code. */
int server_run(struct target *t, const struct server_options *o);

/* Split "HOST:PORT" into host and port (host defaults to 127.0.0.1); false if malformed. */
bool server_parse_listen(const char *spec, char *host, size_t hostlen, char *port, size_t portlen);

#endif
