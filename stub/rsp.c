#include "rsp.h"

#include "../memmodel/growarray.h"

#include <stdarg.h>
#include <stdint.h>
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
	/* One byte more for the NUL kept after the data. */
	if (extra >= SIZE_MAX - b->len || grow_array(&b->data, &b->cap, b->len + extra + 1, 1)) {
		b->failed = true;
		return false;
	}
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

/* "000102...ff": the two digits of every byte value, so encoding is one 2-byte copy per byte. */
#define HEX_ROW(h) h "0" h "1" h "2" h "3" h "4" h "5" h "6" h "7" h "8" h "9" h "a" h "b" h "c" h "d" h "e" h "f"
static const char hex_pairs[513] = HEX_ROW("0") HEX_ROW("1") HEX_ROW("2") HEX_ROW("3") HEX_ROW("4")
	HEX_ROW("5") HEX_ROW("6") HEX_ROW("7") HEX_ROW("8") HEX_ROW("9") HEX_ROW("a") HEX_ROW("b")
	HEX_ROW("c") HEX_ROW("d") HEX_ROW("e") HEX_ROW("f");

/* Write 2*len hex digits at w; returns the end. */
static char *hex_encode(char *w, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++, w += 2)
		memcpy(w, hex_pairs + 2 * p[i], 2);
	return w;
}

void rsp_buf_addhex(struct rsp_buf *b, const void *data, size_t len)
{
	if (!buf_reserve(b, 2 * len))
		return;
	/* A local cursor: stores through b->data could alias b->len and force a reload per byte. */
	char *w = hex_encode(b->data + b->len, data, len);
	*w = '\0';
	b->len = (size_t)(w - b->data);
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
	struct rsp_frame f;
	rsp_frame_begin(out, &f);
	rsp_frame_add(out, &f, payload, len);
	rsp_frame_end(out, &f);
}

void rsp_frame_begin(struct rsp_buf *out, struct rsp_frame *f)
{
	f->sum = 0;
	rsp_buf_addc(out, '$');
}

/* '*' would start run-length encoding on the receiving side. */
static bool needs_escape(uint8_t c)
{
	return c == '$' || c == '#' || c == '}' || c == '*';
}

static char *escape_bytes(char *w, const uint8_t *p, size_t len, uint8_t *sum)
{
	uint8_t s = *sum;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];
		if (needs_escape(c)) {
			*w++ = '}';
			s += '}';
			c ^= 0x20;
		}
		*w++ = (char)c;
		s += c;
	}
	*sum = s;
	return w;
}

/* Fixed-length loops over a block, which the compiler vectorizes. */
#define BLOCK 64

/* Byte sums in 16 lanes (mod 256 each), added up once per call: no widening per block. */
#define LANES 16
static void sum_block(uint8_t *lanes, const uint8_t *p)
{
	for (size_t i = 0; i < BLOCK; i += LANES)
		for (size_t k = 0; k < LANES; k++)
			lanes[k] += p[i + k];
}

static uint8_t fold_lanes(const uint8_t *lanes)
{
	uint8_t s = 0;
	for (size_t k = 0; k < LANES; k++)
		s += lanes[k];
	return s;
}

/* Flag the bytes to escape; bitwise, not ||, as branches would stop the vectorizer. */
static bool flag_block(const uint8_t *p, uint8_t *flags)
{
	uint8_t any = 0;
	for (size_t i = 0; i < BLOCK; i++) {
		flags[i] = (uint8_t)((p[i] == '$') | (p[i] == '#') | (p[i] == '}') | (p[i] == '*'));
		any |= flags[i];
	}
	return any != 0;
}

/*
 * Escape a block that holds bytes to escape: 8-byte groups without one (most of them) are
 * copied whole. Adds to *sum what the escapes add to the checksum of the block's raw bytes.
 */
static char *escape_block(char *w, const uint8_t *p, const uint8_t *flags, uint8_t *sum)
{
	for (size_t g = 0; g < BLOCK; g += 8) {
		uint64_t any;
		memcpy(&any, flags + g, 8);
		if (!any) {
			memcpy(w, p + g, 8);
			w += 8;
			continue;
		}
		/* Branch-free: a '}' is written every time and kept only before a flagged byte. */
		for (size_t i = g; i < g + 8; i++) {
			uint8_t c = p[i], e = flags[i];
			*w = '}';
			w += e;
			*w++ = (char)(c ^ (e << 5));
			*sum += (uint8_t)(e * (uint8_t)('}' + (c ^ 0x20) - c));
		}
	}
	return w;
}

void rsp_frame_add(struct rsp_buf *out, struct rsp_frame *f, const void *data, size_t len)
{
	const uint8_t *p = data;
	/* Every byte escaped at worst: one reservation, then writes in place. */
	if (!buf_reserve(out, 2 * len))
		return;
	char *w = out->data + out->len;
	size_t i = 0;
	uint8_t lanes[LANES] = { 0 };
	for (; i + BLOCK <= len; i += BLOCK) {
		uint8_t flags[BLOCK];
		sum_block(lanes, p + i);
		if (flag_block(p + i, flags)) {
			w = escape_block(w, p + i, flags, &f->sum);
		} else {
			memcpy(w, p + i, BLOCK);
			w += BLOCK;
		}
	}
	f->sum += fold_lanes(lanes);
	w = escape_bytes(w, p + i, len - i, &f->sum);
	*w = '\0';
	out->len = (size_t)(w - out->data);
}

void rsp_frame_addhex(struct rsp_buf *out, struct rsp_frame *f, const void *data, size_t len)
{
	const uint8_t *p = data;
	if (!buf_reserve(out, 2 * len))
		return;
	char *w = out->data + out->len;
	size_t i = 0;
	/* Encode half a block, then sum its digits while they are in cache. */
	uint8_t lanes[LANES] = { 0 };
	for (; i + BLOCK / 2 <= len; i += BLOCK / 2) {
		w = hex_encode(w, p + i, BLOCK / 2);
		sum_block(lanes, (const uint8_t *)w - BLOCK);
	}
	f->sum += fold_lanes(lanes);
	for (; i < len; i++, w += 2) {
		memcpy(w, hex_pairs + 2 * p[i], 2);
		f->sum += (uint8_t)(w[0] + w[1]);
	}
	*w = '\0';
	out->len = (size_t)(w - out->data);
}

void rsp_frame_end(struct rsp_buf *out, struct rsp_frame *f)
{
	char tail[3] = { '#', hex_pairs[2 * f->sum], hex_pairs[2 * f->sum + 1] };
	rsp_buf_add(out, tail, sizeof(tail));
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
