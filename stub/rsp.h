/*
 * GDB remote serial protocol framing: packet parsing from a byte stream ($...#cc, acks,
 * escapes, ^C), reply encoding with checksum and escaping, and hex helpers. No state beyond
 * one connection's parser; no knowledge of what packets mean.
 */
#ifndef STUB_RSP_H
#define STUB_RSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest packet the stub accepts and advertises (qSupported PacketSize). */
#define RSP_PACKET_SIZE 0x20000

/* A growable byte buffer; replies are built into one. */
struct rsp_buf {
	char *data;
	size_t len, cap;
	bool failed; /* an allocation failed: contents are incomplete */
};

void rsp_buf_init(struct rsp_buf *b);
void rsp_buf_free(struct rsp_buf *b);
void rsp_buf_reset(struct rsp_buf *b);
void rsp_buf_add(struct rsp_buf *b, const void *data, size_t len);
void rsp_buf_addc(struct rsp_buf *b, char c);
void rsp_buf_adds(struct rsp_buf *b, const char *s);
void rsp_buf_printf(struct rsp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append len bytes as lowercase hex. */
void rsp_buf_addhex(struct rsp_buf *b, const void *data, size_t len);

/* What rsp_parser_feed found. */
enum rsp_event {
	RSP_EV_NONE,       /* byte consumed, nothing complete yet */
	RSP_EV_PACKET,     /* a packet with a good checksum: payload in parser->packet */
	RSP_EV_ACK,        /* '+' */
	RSP_EV_NACK,       /* '-' */
	RSP_EV_INTERRUPT,  /* ^C outside a packet */
	RSP_EV_BAD_CHECKSUM,
	RSP_EV_TOO_LONG,   /* packet exceeded the limit: dropped */
	RSP_EV_GARBAGE,    /* a byte outside any packet that means nothing */
};

struct rsp_parser {
	enum { RSP_IDLE, RSP_BODY, RSP_ESCAPE, RSP_SUM1, RSP_SUM2 } state;
	char *packet;       /* unescaped payload, NUL-terminated (payload may hold NULs) */
	size_t len, cap;
	size_t limit;       /* maximum unescaped payload length */
	bool overflow;      /* current packet is being dropped */
	uint8_t sum;        /* running checksum of the raw body */
	uint8_t sent_sum;
};

void rsp_parser_init(struct rsp_parser *p, size_t limit);
void rsp_parser_free(struct rsp_parser *p);
/* Feed one byte; when it returns RSP_EV_PACKET, packet/len hold the payload until the next call. */
enum rsp_event rsp_parser_feed(struct rsp_parser *p, uint8_t byte);

/* Append "$<escaped payload>#cc" to out. */
void rsp_put_packet(struct rsp_buf *out, const void *payload, size_t len);

/*
 * The same framing in pieces, so a large reply is encoded straight into out without an
 * intermediate payload buffer: begin, any number of adds, end.
 */
struct rsp_frame {
	uint8_t sum; /* checksum of the escaped bytes so far */
};
void rsp_frame_begin(struct rsp_buf *out, struct rsp_frame *f);
/* Append bytes escaped as needed ('$', '#', '}', '*'). */
void rsp_frame_add(struct rsp_buf *out, struct rsp_frame *f, const void *data, size_t len);
/* Append bytes as lowercase hex (hex digits never need escaping). */
void rsp_frame_addhex(struct rsp_buf *out, struct rsp_frame *f, const void *data, size_t len);
void rsp_frame_end(struct rsp_buf *out, struct rsp_frame *f);

int rsp_hexval(char c);
/* Parse a hex number that ends at a char in `stop` (or end of string); NULL on a bad digit or overflow. */
const char *rsp_parse_hex(const char *s, const char *stop, uint64_t *val);
/* Decode 2*n hex chars into n bytes; false on a bad digit. */
bool rsp_unhex(const char *hex, size_t nbytes, uint8_t *out);

#endif
