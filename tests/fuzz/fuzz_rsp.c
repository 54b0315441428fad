/*
 * Fuzz the stub's packet path: bytes -> RSP parser -> handler table, with no kernel loaded
 * (every handler must answer a well-formed reply whatever the arguments). Seeds live in
 * tests/fuzz/corpus/rsp/.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "handlers.h"
#include "rsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct target t;
	struct session s;
	struct rsp_parser p;
	struct rsp_buf out;
	target_init(&t, NULL, NULL, TASKS_ALL);
	session_init(&s, false);
	/* A small limit so the oversized-packet path is reached too. */
	rsp_parser_init(&p, 4096);
	rsp_buf_init(&out);
	for (size_t i = 0; i < size && !s.ended; i++) {
		if (rsp_parser_feed(&p, data[i]) != RSP_EV_PACKET)
			continue;
		handle_packet(&t, &s, p.packet, p.len, &out);
		/* Every reply must itself be a well-framed packet stream. */
		if (out.len && out.data[0] != '$')
			__builtin_trap();
		rsp_buf_reset(&out);
	}
	rsp_buf_free(&out);
	rsp_parser_free(&p);
	target_free(&t);
	return 0;
}
