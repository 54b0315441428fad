#include "rsp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rsp_buf_init(struct rsp_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void rsp_buf_free(struct rsp_buf *b)
{
	free(b->data);
	rsp_buf_init(b);
}

void rsp_buf_reset(struct rsp_buf *b)
{
	b->len = 0;
	b->failed = false;
}

static bool buf_reserve(struct rsp_buf *b, size_t extra)
{
	if (b->failed)
		return false;
	if (b->len + extra + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *data = realloc(b->data, cap);
	if (!data) {
		b->failed = true;
		return false;
	}
	b->data = data;
	b->cap = cap;
	return true;
}

void rsp_buf_add(struct rsp_buf *b, const void *data, size_t len)
{
	if (!buf_reserve(b, len))
		return;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void rsp_buf_addc(struct rsp_buf *b, char c)
{
	rsp_buf_add(b, &c, 1);
}

void rsp_buf_adds(struct rsp_buf *b, const char *s)
{
	rsp_buf_add(b, s, strlen(s));
}

void rsp_buf_printf(struct rsp_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void rsp_buf_addhex(struct rsp_buf *b, const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = data;
	if (!buf_reserve(b, 2 * len))
		return;
	/* A local cursor: stores through b->data could alias b->len and force a reload per byte. */
	char *w = b->data + b->len;
	for (size_t i = 0; i < len; i++) {
		*w++ = digits[p[i] >> 4];
		*w++ = digits[p[i] & 15];
	}
	*w = '\0';
	b->len = (size_t)(w - b->data);
}

void rsp_buf_consume(struct rsp_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = '\0';
}

void rsp_parser_init(struct rsp_parser *p, size_t limit)
{
	memset(p, 0, sizeof(*p));
	p->limit = limit;
}

void rsp_parser_free(struct rsp_parser *p)
{
	free(p->packet);
	p->packet = NULL;
	p->cap = p->len = 0;
}

/* Append one unescaped payload byte; past the limit the packet is marked as dropped. */
static void parser_store(struct rsp_parser *p, uint8_t c)
{
	if (p->overflow)
		return;
	if (p->len >= p->limit) {
		p->overflow = true;
		return;
	}
	if (p->len + 2 > p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 512;
		if (cap > p->limit + 1)
			cap = p->limit + 1;
		char *n = realloc(p->packet, cap);
		if (!n) {
			p->overflow = true;
			return;
		}
		p->packet = n;
		p->cap = cap;
	}
	p->packet[p->len++] = (char)c;
	p->packet[p->len] = '\0';
}

enum rsp_event rsp_parser_feed(struct rsp_parser *p, uint8_t c)
{
	int v;
	switch (p->state) {
	case RSP_IDLE:
		if (c == '$') {
			p->state = RSP_BODY;
			p->len = 0;
			p->sum = 0;
			p->overflow = false;
			if (p->packet)
				p->packet[0] = '\0';
			return RSP_EV_NONE;
		}
		if (c == '+')
			return RSP_EV_ACK;
		if (c == '-')
			return RSP_EV_NACK;
		if (c == 0x03)
			return RSP_EV_INTERRUPT;
		return RSP_EV_GARBAGE;
	case RSP_BODY:
		if (c == '#') {
			p->state = RSP_SUM1;
			return RSP_EV_NONE;
		}
		/* A '$' inside a body means the previous packet was cut: restart on this one. */
		if (c == '$') {
			p->len = 0;
			p->sum = 0;
			p->overflow = false;
			return RSP_EV_NONE;
		}
		p->sum += c;
		if (c == '}')
			p->state = RSP_ESCAPE;
		else
			parser_store(p, c);
		return RSP_EV_NONE;
	case RSP_ESCAPE:
		p->sum += c;
		parser_store(p, c ^ 0x20);
		p->state = RSP_BODY;
		return RSP_EV_NONE;
	case RSP_SUM1:
		v = rsp_hexval((char)c);
		p->sent_sum = (uint8_t)((v < 0 ? 0 : v) << 4);
		p->state = v < 0 ? RSP_IDLE : RSP_SUM2;
		return v < 0 ? RSP_EV_BAD_CHECKSUM : RSP_EV_NONE;
	case RSP_SUM2:
		p->state = RSP_IDLE;
		v = rsp_hexval((char)c);
		if (p->overflow)
			return RSP_EV_TOO_LONG;
		if (v < 0 || (uint8_t)(p->sent_sum | v) != p->sum)
			return RSP_EV_BAD_CHECKSUM;
		if (!p->packet) { /* empty first packet: callers still get a string */
			p->packet = calloc(1, 1);
			if (!p->packet)
				return RSP_EV_TOO_LONG;
			p->cap = 1;
		}
		p->packet[p->len] = '\0';
		return RSP_EV_PACKET;
	}
	return RSP_EV_GARBAGE;
}

void rsp_put_packet(struct rsp_buf *out, const void *payload, size_t len)
{
	const uint8_t *p = payload;
	uint8_t sum = 0;
	/* Room for '$', every byte escaped, and "#xx": one reservation, then writes in place. */
	if (!buf_reserve(out, 2 * len + 4))
		return;
	char *w = out->data + out->len;
	*w++ = '$';
	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];
		/* '*' would start run-length encoding on the receiving side. */
		if (c == '$' || c == '#' || c == '}' || c == '*') {
			*w++ = '}';
			sum += '}';
			c ^= 0x20;
		}
		*w++ = (char)c;
		sum += c;
	}
	out->len = (size_t)(w - out->data);
	rsp_buf_printf(out, "#%02x", sum);
}

int rsp_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

const char *rsp_parse_hex(const char *s, const char *stop, uint64_t *val)
{
	uint64_t v = 0;
	const char *p = s;
	for (; *p && !strchr(stop, *p); p++) {
		int d = rsp_hexval(*p);
		if (d < 0 || v >> 60)
			return NULL;
		v = v << 4 | (uint64_t)d;
	}
	if (p == s)
		return NULL;
	*val = v;
	return p;
}

bool rsp_unhex(const char *hex, size_t nbytes, uint8_t *out)
{
	for (size_t i = 0; i < nbytes; i++) {
		int hi = rsp_hexval(hex[2 * i]);
		int lo = hi < 0 ? -1 : rsp_hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}
