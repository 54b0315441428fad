/* Protocol layer of the stub: framing, escaping, hex, target description, thread XML, and
 * packet dispatch with no kernel loaded (every request must still get a well-formed reply). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "handlers.h"
#include "rsp.h"
#include "server.h"
#include "tdesc.h"
#include "threads.h"

/* Feed a byte string; return the last event and count packets seen. */
static enum rsp_event feed(struct rsp_parser *p, const char *bytes, size_t len, int *packets)
{
	enum rsp_event last = RSP_EV_NONE;
	for (size_t i = 0; i < len; i++) {
		enum rsp_event ev = rsp_parser_feed(p, (uint8_t)bytes[i]);
		if (ev != RSP_EV_NONE)
			last = ev;
		if (ev == RSP_EV_PACKET && packets)
			(*packets)++;
	}
	return last;
}

static void test_parser_good_and_bad_checksum(void **state)
{
	(void)state;
	struct rsp_parser p;
	rsp_parser_init(&p, 64);
	assert_int_equal(feed(&p, "$qC#b4", 6, NULL), RSP_EV_PACKET);
	assert_string_equal(p.packet, "qC");
	assert_int_equal(feed(&p, "$qC#b5", 6, NULL), RSP_EV_BAD_CHECKSUM);
	assert_int_equal(feed(&p, "$qC#bz", 6, NULL), RSP_EV_BAD_CHECKSUM);
	assert_int_equal(feed(&p, "+", 1, NULL), RSP_EV_ACK);
	assert_int_equal(feed(&p, "-", 1, NULL), RSP_EV_NACK);
	assert_int_equal(feed(&p, "\x03", 1, NULL), RSP_EV_INTERRUPT);
	assert_int_equal(feed(&p, "x", 1, NULL), RSP_EV_GARBAGE);
	assert_int_equal(feed(&p, "$#00", 4, NULL), RSP_EV_PACKET);
	assert_int_equal(p.len, 0);
	rsp_parser_free(&p);
}

static void test_parser_unescapes_and_restarts(void **state)
{
	(void)state;
	struct rsp_parser p;
	rsp_parser_init(&p, 64);
	/* "}\x03" is '#' escaped; the checksum covers the raw bytes. */
	const char raw[] = "$a}\x03" "b#";
	uint8_t sum = 0;
	for (size_t i = 1; i < sizeof(raw) - 2; i++)
		sum += (uint8_t)raw[i];
	char pkt[32];
	snprintf(pkt, sizeof(pkt), "%s%02x", raw, sum);
	assert_int_equal(feed(&p, pkt, strlen(pkt), NULL), RSP_EV_PACKET);
	assert_int_equal(p.len, 3);
	assert_memory_equal(p.packet, "a#b", 3);
	/* A '$' inside a body starts over: the cut packet is forgotten. */
	int n = 0;
	assert_int_equal(feed(&p, "$abc$qC#b4", 10, &n), RSP_EV_PACKET);
	assert_int_equal(n, 1);
	assert_string_equal(p.packet, "qC");
	rsp_parser_free(&p);
}

static void test_parser_drops_oversized(void **state)
{
	(void)state;
	struct rsp_parser p;
	rsp_parser_init(&p, 8);
	assert_int_equal(feed(&p, "$0123456789#00", 14, NULL), RSP_EV_TOO_LONG);
	/* The next packet is parsed normally. */
	assert_int_equal(feed(&p, "$qC#b4", 6, NULL), RSP_EV_PACKET);
	assert_string_equal(p.packet, "qC");
	rsp_parser_free(&p);
}

static void test_put_packet_escapes_round_trip(void **state)
{
	(void)state;
	const char payload[] = { 'b', '$', '#', '}', '*', 0, (char)0xff };
	struct rsp_buf out;
	rsp_buf_init(&out);
	rsp_put_packet(&out, payload, sizeof(payload));
	assert_null(memchr(out.data + 1, '$', out.len - 1));
	assert_null(memchr(out.data + 1, '*', out.len - 1));
	struct rsp_parser p;
	rsp_parser_init(&p, 64);
	assert_int_equal(feed(&p, out.data, out.len, NULL), RSP_EV_PACKET);
	assert_int_equal(p.len, sizeof(payload));
	assert_memory_equal(p.packet, payload, sizeof(payload));
	rsp_parser_free(&p);
	rsp_buf_free(&out);
}

/*
 * Large payloads go through the block-at-a-time paths of rsp_frame_add and rsp_frame_addhex:
 * every byte value, special bytes at every offset of a block and across block edges, and a
 * tail shorter than a block must round-trip through the parser with a correct checksum.
 */
static void test_frame_large_payloads_round_trip(void **state)
{
	(void)state;
	enum { N = 64 * 9 + 37 };
	uint8_t data[N];
	for (size_t i = 0; i < N; i++)
		data[i] = (uint8_t)(i * 7 + i / 256);
	/* A run of only special bytes, and single ones at every offset of two blocks. */
	memset(data + 64, '}', 64);
	for (size_t i = 192; i < 320; i += 5)
		data[i] = "$#}*"[i % 4];
	struct rsp_parser p;
	rsp_parser_init(&p, 4 * N);
	struct rsp_buf out;
	rsp_buf_init(&out);
	struct rsp_frame f;
	rsp_frame_begin(&out, &f);
	rsp_frame_add(&out, &f, "b", 1);
	rsp_frame_add(&out, &f, data, N);
	rsp_frame_end(&out, &f);
	assert_false(out.failed);
	assert_null(memchr(out.data + 1, '$', out.len - 1));
	assert_null(memchr(out.data + 1, '*', out.len - 1));
	assert_int_equal(feed(&p, out.data, out.len, NULL), RSP_EV_PACKET);
	assert_int_equal(p.len, N + 1);
	assert_int_equal(p.packet[0], 'b');
	assert_memory_equal(p.packet + 1, data, N);

	rsp_buf_reset(&out);
	rsp_frame_begin(&out, &f);
	rsp_frame_addhex(&out, &f, data, N);
	rsp_frame_end(&out, &f);
	assert_int_equal(feed(&p, out.data, out.len, NULL), RSP_EV_PACKET);
	assert_int_equal(p.len, 2 * N);
	uint8_t back[N];
	assert_true(rsp_unhex(p.packet, N, back));
	assert_memory_equal(back, data, N);
	/* The same hex as the payload buffer helper writes. */
	struct rsp_buf hex;
	rsp_buf_init(&hex);
	rsp_buf_addhex(&hex, data, N);
	assert_int_equal(hex.len, 2 * N);
	assert_memory_equal(hex.data, p.packet, 2 * N);
	rsp_buf_free(&hex);
	rsp_buf_free(&out);
	rsp_parser_free(&p);
}

static void test_hex_helpers(void **state)
{
	(void)state;
	uint64_t v;
	const char *end = rsp_parse_hex("ffffffff81000000,10", ",", &v);
	assert_non_null(end);
	assert_int_equal(*end, ',');
	assert_true(v == 0xffffffff81000000ull);
	assert_null(rsp_parse_hex("12g", "", &v));
	assert_null(rsp_parse_hex(",", ",", &v));
	assert_null(rsp_parse_hex("11112222333344445", "", &v)); /* 65 bits */
	uint8_t bytes[2];
	assert_true(rsp_unhex("a0Ff", 2, bytes));
	assert_int_equal(bytes[0], 0xa0);
	assert_int_equal(bytes[1], 0xff);
	assert_false(rsp_unhex("a0x1", 2, bytes));
}

/* Every <reg> of target.xml, in order, must be the table entry of the same g-packet slot. */
static void test_tdesc_xml_matches_register_table(void **state)
{
	(void)state;
	const struct tdesc_reg *regs;
	size_t n = tdesc_regs(&regs);
	const char *p = tdesc_xml();
	size_t i = 0;
	while ((p = strstr(p, "<reg name=\""))) {
		p += strlen("<reg name=\"");
		assert_true(i < n);
		size_t len = strcspn(p, "\"");
		assert_int_equal(len, strlen(regs[i].name));
		assert_memory_equal(p, regs[i].name, len);
		char bits[32];
		snprintf(bits, sizeof(bits), "bitsize=\"%u\"", regs[i].bits);
		const char *close = strchr(p, '>');
		const char *b = strstr(p, bits);
		assert_true(b && b < close);
		i++;
	}
	assert_int_equal(i, n);
	assert_non_null(strstr(tdesc_xml(), "<architecture>i386:x86-64</architecture>"));
	assert_non_null(strstr(tdesc_xml(), "org.gnu.gdb.i386.segments"));
}

static void test_tdesc_g_encoding(void **state)
{
	(void)state;
	const struct tdesc_reg *regs;
	size_t n = tdesc_regs(&regs);
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += regs[i].bits / 8;
	struct x86_regs r = { 0 };
	regs_set(&r, REG_RAX, 0x1122334455667788ull);
	regs_set(&r, REG_EFLAGS, 0x246);
	regs_set(&r, REG_GS_BASE, 0xffff888000000000ull);
	struct rsp_buf out;
	rsp_buf_init(&out);
	tdesc_encode_g(&r, &out);
	assert_int_equal(out.len, 2 * bytes);
	assert_memory_equal(out.data, "8877665544332211", 16); /* little-endian */
	assert_memory_equal(out.data + 16, "xxxxxxxxxxxxxxxx", 16); /* rbx unknown */
	assert_memory_equal(out.data + 17 * 16, "46020000", 8); /* eflags: 32 bits */
	rsp_buf_reset(&out);
	size_t gs = 0;
	while (strcmp(regs[gs].name, "gs_base") != 0)
		gs++;
	assert_true(tdesc_encode_p(&r, gs, &out));
	assert_string_equal(out.data, "000000008088ffff");
	rsp_buf_reset(&out);
	assert_true(tdesc_encode_p(NULL, 0, &out));
	assert_string_equal(out.data, "xxxxxxxxxxxxxxxx");
	assert_false(tdesc_encode_p(&r, n, &out));
	rsp_buf_free(&out);
}

static void test_threads_xml_escapes_names(void **state)
{
	(void)state;
	struct stub_thread th[2] = {
		{ .tid = 1, .kind = THREAD_CPU, .cpu = 0 },
		{ .tid = 2, .kind = THREAD_TASK, .cpu = 1 },
	};
	snprintf(th[0].name, sizeof(th[0].name), "CPU#0 [panic]");
	snprintf(th[0].extra, sizeof(th[0].extra), "CPU#0, current 1 init");
	snprintf(th[1].name, sizeof(th[1].name), "7 a<b>&\"c\x01");
	snprintf(th[1].extra, sizeof(th[1].extra), "S sleeping");
	struct thread_list l = { .threads = th, .n = 2, .ncpus = 1, .panic_tid = 1 };
	struct rsp_buf out;
	rsp_buf_init(&out);
	threads_xml(&l, &out);
	assert_non_null(strstr(out.data, "<thread id=\"1\" core=\"0\" name=\"CPU#0 [panic]\">CPU#0, current 1 init</thread>"));
	assert_non_null(strstr(out.data, "name=\"7 a&lt;b&gt;&amp;&quot;c?\">S sleeping</thread>"));
	assert_ptr_equal(threads_find(&l, 2), &th[1]);
	assert_null(threads_find(&l, 0));
	assert_null(threads_find(&l, 3));
	rsp_buf_free(&out);
}

/* Send one packet payload to a kernel-less target; returns the framed output. */
static char *exchange(struct target *t, struct session *s, const char *payload)
{
	struct rsp_buf out;
	rsp_buf_init(&out);
	handle_packet(t, s, payload, strlen(payload), &out);
	char *text = strdup(out.data ? out.data : "");
	rsp_buf_free(&out);
	return text;
}

/* The payload of the last framed packet in text. */
static char *last_payload(const char *text)
{
	const char *start = strrchr(text, '$');
	assert_non_null(start);
	const char *end = strrchr(text, '#');
	assert_true(end > start);
	return strndup(start + 1, (size_t)(end - start - 1));
}

static void expect_reply(struct target *t, struct session *s, const char *req, const char *reply)
{
	char *text = exchange(t, s, req);
	char *payload = last_payload(text);
	if (strcmp(payload, reply) != 0)
		fail_msg("%s: replied '%s', expected '%s'", req, payload, reply);
	free(payload);
	free(text);
}

static void test_dispatch_without_kernel(void **state)
{
	(void)state;
	struct target t;
	struct session s;
	target_init(&t, NULL, NULL, TASKS_ALL);
	session_init(&s, false);

	char *text = exchange(&t, &s, "qSupported:multiprocess+;swbreak+;xmlRegisters=i386");
	assert_non_null(strstr(text, "PacketSize=20000"));
	assert_non_null(strstr(text, "qXfer:features:read+"));
	assert_non_null(strstr(text, "qXfer:threads:read+"));
	assert_null(strstr(text, "error-message+"));
	free(text);

	expect_reply(&t, &s, "vMustReplyEmpty", "");
	expect_reply(&t, &s, "qSomethingNew", "");
	expect_reply(&t, &s, "qAttached", "1");
	expect_reply(&t, &s, "?", "S05");
	expect_reply(&t, &s, "c", "S05");
	expect_reply(&t, &s, "vCont;c", "S05");
	expect_reply(&t, &s, "vCont?", "vCont;c;C;s;S");
	expect_reply(&t, &s, "qfThreadInfo", "l");
	expect_reply(&t, &s, "Z0,ffffffff81000000,1", "E03");
	expect_reply(&t, &s, "M1000,1:00", "E03");
	expect_reply(&t, &s, "G00", "E03");
	expect_reply(&t, &s, "m1000,10", "E0e");
	expect_reply(&t, &s, "mzz", "E01");
	expect_reply(&t, &s, "Hg5", "E02");
	expect_reply(&t, &s, "Hg0", "OK");
	expect_reply(&t, &s, "qqemu.PhyMemMode", "0");
	expect_reply(&t, &s, "Qqemu.PhyMemMode:1", "OK");
	expect_reply(&t, &s, "qqemu.PhyMemMode", "1");
	expect_reply(&t, &s, "Qqemu.PhyMemMode:7", "E01");
	expect_reply(&t, &s, "qXfer:exec-file:read::0,100", "E04");
	expect_reply(&t, &s, "qXfer:features:read:other.xml:0,100", "E01");

	/* monitor help: console output first, then OK. */
	text = exchange(&t, &s, "qRcmd,68656c70");
	assert_int_equal(text[1], 'O');
	char *payload = last_payload(text);
	assert_string_equal(payload, "OK");
	free(payload);
	free(text);
	expect_reply(&t, &s, "qRcmd,6e6f6e73656e7365", "E05"); /* "nonsense" */
	expect_reply(&t, &s, "qRcmd,6", "E01");
	text = exchange(&t, &s, "qRcmd,6c6173742d6572726f72"); /* last-error names the reason */
	assert_non_null(strstr(text, "$O"));
	free(text);

	/* Errors become E.<text> once the client offers error-message+. */
	free(exchange(&t, &s, "qSupported:error-message+"));
	text = exchange(&t, &s, "M1000,1:00");
	assert_non_null(strstr(text, "$E.memory write refused"));
	free(text);

	expect_reply(&t, &s, "QStartNoAckMode", "OK");
	assert_true(s.no_ack);
	text = exchange(&t, &s, "k");
	assert_string_equal(text, ""); /* no reply to k */
	free(text);
	assert_true(s.ended);
	target_free(&t);
}

static void test_xfer_target_xml_in_windows(void **state)
{
	(void)state;
	struct target t;
	struct session s;
	target_init(&t, NULL, NULL, TASKS_ALL);
	session_init(&s, false);
	const char *xml = tdesc_xml();
	size_t total = strlen(xml);
	struct rsp_buf got;
	rsp_buf_init(&got);
	for (size_t off = 0;;) {
		char req[80];
		snprintf(req, sizeof(req), "qXfer:features:read:target.xml:%zx,100", off);
		char *text = exchange(&t, &s, req);
		struct rsp_parser p;
		rsp_parser_init(&p, RSP_PACKET_SIZE);
		assert_int_equal(feed(&p, text, strlen(text), NULL), RSP_EV_PACKET);
		assert_true(p.packet[0] == 'm' || p.packet[0] == 'l');
		rsp_buf_add(&got, p.packet + 1, p.len - 1);
		off += p.len - 1;
		char kind = p.packet[0];
		rsp_parser_free(&p);
		free(text);
		if (kind == 'l')
			break;
		assert_true(off < total);
	}
	assert_int_equal(got.len, total);
	assert_memory_equal(got.data, xml, total);
	rsp_buf_free(&got);
	target_free(&t);
}

static void test_listen_spec(void **state)
{
	(void)state;
	char host[64], port[8];
	assert_true(server_parse_listen("127.0.0.1:1234", host, sizeof(host), port, sizeof(port)));
	assert_string_equal(host, "127.0.0.1");
	assert_string_equal(port, "1234");
	assert_true(server_parse_listen("[::1]:0", host, sizeof(host), port, sizeof(port)));
	assert_string_equal(host, "::1");
	assert_string_equal(port, "0");
	assert_true(server_parse_listen("4321", host, sizeof(host), port, sizeof(port)));
	assert_string_equal(host, "127.0.0.1"); /* loopback unless told otherwise */
	assert_true(server_parse_listen(":99", host, sizeof(host), port, sizeof(port)));
	assert_string_equal(host, "127.0.0.1");
	assert_false(server_parse_listen("host:", host, sizeof(host), port, sizeof(port)));
	assert_false(server_parse_listen("host:http", host, sizeof(host), port, sizeof(port)));
	assert_false(server_parse_listen("[]:1", host, sizeof(host), port, sizeof(port)));
	assert_false(server_parse_listen("h:123456789", host, sizeof(host), port, sizeof(port)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parser_good_and_bad_checksum),
		cmocka_unit_test(test_parser_unescapes_and_restarts),
		cmocka_unit_test(test_parser_drops_oversized),
		cmocka_unit_test(test_put_packet_escapes_round_trip),
		cmocka_unit_test(test_frame_large_payloads_round_trip),
		cmocka_unit_test(test_hex_helpers),
		cmocka_unit_test(test_tdesc_xml_matches_register_table),
		cmocka_unit_test(test_tdesc_g_encoding),
		cmocka_unit_test(test_threads_xml_escapes_names),
		cmocka_unit_test(test_dispatch_without_kernel),
		cmocka_unit_test(test_xfer_target_xml_in_windows),
		cmocka_unit_test(test_listen_spec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
