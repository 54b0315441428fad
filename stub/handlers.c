#include "handlers.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lldb.h"
#include "monitor.h"
#include "tdesc.h"

/* Largest memory read answered in one reply: the hex must fit in a packet. */
#define MAX_READ ((RSP_PACKET_SIZE - 32) / 2)

/* Error numbers in E replies (gdb 13 shows a generic message; the reason is in last-error). */
enum {
	ERR_SYNTAX = 0x01,   /* malformed packet */
	ERR_NO_THREAD = 0x02,
	ERR_READ_ONLY = 0x03, /* writes, breakpoints, watchpoints */
	ERR_NO_KERNEL = 0x04,
	ERR_MONITOR = 0x05,
	ERR_MEMORY = 0x0e,   /* EFAULT */
};

void target_init(struct target *t, struct kernel *k, const char *vmlinux, enum tasks_mode tasks)
{
	memset(t, 0, sizeof(*t));
	t->kernel = k;
	t->vmlinux = vmlinux;
	t->tasks = tasks;
}

void target_free(struct target *t)
{
	threads_free(&t->threads);
	free(t->read_buf);
	t->read_buf = NULL;
}

struct thread_list *target_threads(struct target *t)
{
	if (!t->threads_built) {
		t->threads_built = true;
		struct vm_error *warning = NULL;
		struct vm_error *err = threads_build(t->kernel, t->tasks, &t->threads, &warning);
		if (err || warning) {
			snprintf(t->threads_warning, sizeof(t->threads_warning), "%s",
				 (err ? err : warning)->message);
			fprintf(stderr, "vmcore-gdbserver: %s\n", t->threads_warning);
		}
		vm_error_destroy(err);
		vm_error_destroy(warning);
	}
	return &t->threads;
}

void session_init(struct session *s, bool zero_excluded)
{
	memset(s, 0, sizeof(*s));
	s->zero_excluded = zero_excluded;
}

struct stub_thread *session_thread(struct target *t, struct session *s)
{
	struct thread_list *l = target_threads(t);
	struct stub_thread *th = threads_find(l, s->g_tid);
	return th ? th : threads_find(l, l->panic_tid);
}

struct ctx {
	struct target *t;
	struct session *s;
	struct rsp_buf *out;   /* framed packets, sent in order */
	struct rsp_buf reply;  /* payload of the final reply */
	bool replied;          /* the handler framed its final reply into out itself */
};

static void reply_error(struct ctx *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reply_error(struct ctx *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->s->last_error, sizeof(c->s->last_error), fmt, ap);
	va_end(ap);
	if (c->t->debug)
		fprintf(stderr, "vmcore-gdbserver: error: %s\n", c->s->last_error);
	rsp_buf_reset(&c->reply);
	if (c->s->error_messages) {
		rsp_buf_adds(&c->reply, "E.");
		rsp_buf_adds(&c->reply, c->s->last_error);
	} else {
		rsp_buf_printf(&c->reply, "E%02x", code);
	}
}

static void reply_read_only(struct ctx *c, const char *what)
{
	reply_error(c, ERR_READ_ONLY, "%s refused: the target is a crash dump, read-only", what);
}

/* Thread id as gdb sends it: hex, -1 (all), 0 (any), or p<pid>.<tid> in multiprocess syntax. */
static bool parse_tid(const char *s, int64_t *tid)
{
	uint64_t v;
	if (s[0] == 'p') {
		const char *dot = strchr(s, '.');
		if (!dot)
			return false;
		s = dot + 1;
	}
	if (strcmp(s, "-1") == 0) {
		*tid = -1;
		return true;
	}
	const char *end = rsp_parse_hex(s, "", &v);
	if (!end || v > INT64_MAX)
		return false;
	*tid = (int64_t)v;
	return true;
}

/* Parse "ADDR,LEN" (hex) ending at a char of stop. */
static const char *parse_addr_len(const char *args, const char *stop, uint64_t *addr, uint64_t *len)
{
	const char *p = rsp_parse_hex(args, ",", addr);
	if (!p || *p != ',')
		return NULL;
	return rsp_parse_hex(p + 1, stop, len);
}

static void stop_reply(struct ctx *c, uint64_t tid)
{
	struct thread_list *l = target_threads(c->t);
	if (!threads_find(l, tid))
		tid = l->panic_tid;
	if (tid)
		rsp_buf_printf(&c->reply, "T05thread:%llx;", (unsigned long long)tid);
	else
		rsp_buf_adds(&c->reply, "S05");
}

static void h_stop_reason(struct ctx *c, const char *args)
{
	(void)args;
	stop_reply(c, 0);
}

static void h_resume(struct ctx *c, const char *args)
{
	(void)args;
	/* Nothing can run: report an immediate stop so IDEs that resume on attach do not hang. */
	stop_reply(c, c->s->c_tid);
}

static void h_vcont_query(struct ctx *c, const char *args)
{
	(void)args;
	rsp_buf_adds(&c->reply, "vCont;c;C;s;S");
}

static void h_vcont(struct ctx *c, const char *args)
{
	/* Stop in the first thread an action names, like a step of that thread would. */
	uint64_t tid = 0;
	const char *colon = strchr(args, ':');
	if (colon) {
		int64_t t;
		char idbuf[40];
		size_t n = strcspn(colon + 1, ";");
		if (n < sizeof(idbuf)) {
			memcpy(idbuf, colon + 1, n);
			idbuf[n] = '\0';
			if (parse_tid(idbuf, &t) && t > 0)
				tid = (uint64_t)t;
		}
	}
	if (args[0] != 'c' && args[0] != 'C' && args[0] != 's' && args[0] != 'S') {
		reply_error(c, ERR_SYNTAX, "vCont action '%.20s' is not supported", args);
		return;
	}
	stop_reply(c, tid);
}

static void h_set_thread(struct ctx *c, const char *args)
{
	int64_t tid;
	if ((args[0] != 'g' && args[0] != 'c') || !parse_tid(args + 1, &tid)) {
		reply_error(c, ERR_SYNTAX, "bad H packet 'H%.40s'", args);
		return;
	}
	if (tid > 0 && !threads_find(target_threads(c->t), (uint64_t)tid)) {
		reply_error(c, ERR_NO_THREAD, "no thread %llx", (unsigned long long)tid);
		return;
	}
	uint64_t v = tid > 0 ? (uint64_t)tid : 0;
	if (args[0] == 'g')
		c->s->g_tid = v;
	else
		c->s->c_tid = v;
	rsp_buf_adds(&c->reply, "OK");
}

static void h_thread_alive(struct ctx *c, const char *args)
{
	int64_t tid;
	if (!parse_tid(args, &tid)) {
		reply_error(c, ERR_SYNTAX, "bad T packet 'T%.40s'", args);
		return;
	}
	if (tid <= 0 || !threads_find(target_threads(c->t), (uint64_t)tid)) {
		reply_error(c, ERR_NO_THREAD, "no thread %llx", (unsigned long long)tid);
		return;
	}
	rsp_buf_adds(&c->reply, "OK");
}

static void h_current_thread(struct ctx *c, const char *args)
{
	(void)args;
	struct thread_list *l = target_threads(c->t);
	if (l->panic_tid)
		rsp_buf_printf(&c->reply, "QC%llx", (unsigned long long)l->panic_tid);
}

static void h_attached(struct ctx *c, const char *args)
{
	(void)args;
	rsp_buf_adds(&c->reply, "1");
}

static void h_empty(struct ctx *c, const char *args)
{
	(void)c;
	(void)args;
}

static void h_ok(struct ctx *c, const char *args)
{
	(void)args;
	rsp_buf_adds(&c->reply, "OK");
}

/* qfThreadInfo / qsThreadInfo: the whole list in one reply (gdb accepts any length). */
static void h_thread_info_first(struct ctx *c, const char *args)
{
	(void)args;
	struct thread_list *l = target_threads(c->t);
	if (!l->n) {
		rsp_buf_adds(&c->reply, "l");
		return;
	}
	rsp_buf_addc(&c->reply, 'm');
	for (size_t i = 0; i < l->n; i++)
		rsp_buf_printf(&c->reply, "%s%llx", i ? "," : "", (unsigned long long)l->threads[i].tid);
}

static void h_thread_info_next(struct ctx *c, const char *args)
{
	(void)args;
	rsp_buf_adds(&c->reply, "l");
}

static void h_thread_extra_info(struct ctx *c, const char *args)
{
	int64_t tid;
	struct stub_thread *th;
	if (!parse_tid(args, &tid) || tid <= 0 ||
	    !(th = threads_find(target_threads(c->t), (uint64_t)tid))) {
		reply_error(c, ERR_NO_THREAD, "no thread '%.40s'", args);
		return;
	}
	char text[sizeof(th->name) + sizeof(th->extra) + 4];
	snprintf(text, sizeof(text), "%s, %s", th->name, th->extra);
	rsp_buf_addhex(&c->reply, text, strlen(text));
}

static void h_read_registers(struct ctx *c, const char *args)
{
	(void)args;
	struct stub_thread *th = session_thread(c->t, c->s);
	if (!th) {
		reply_error(c, ERR_NO_KERNEL, "no thread to read registers from");
		return;
	}
	tdesc_encode_g(threads_regs(c->t->kernel, th), &c->reply);
}

static void h_read_register(struct ctx *c, const char *args)
{
	uint64_t regno;
	struct stub_thread *th = session_thread(c->t, c->s);
	if (!rsp_parse_hex(args, "", &regno)) {
		reply_error(c, ERR_SYNTAX, "bad p packet 'p%.40s'", args);
		return;
	}
	if (!th) {
		reply_error(c, ERR_NO_KERNEL, "no thread to read registers from");
		return;
	}
	if (!tdesc_encode_p(threads_regs(c->t->kernel, th), regno, &c->reply))
		reply_error(c, ERR_SYNTAX, "no register %llu", (unsigned long long)regno);
}

/* Read through the address space a session is in: physical, a task's user space, or kernel. */
static struct vm_error *session_read(struct ctx *c, uint64_t addr, void *buf, size_t len, size_t *done)
{
	*done = 0;
	if (!c->t->kernel)
		return vm_error_create(VM_ERR_NOT_FOUND, addr, "no kernel loaded");
	struct kernel_read_opts o = { .as = KAS_KERNEL, .zero_excluded = c->s->zero_excluded };
	if (c->s->phys_mode) {
		o.as = KAS_PHYS;
	} else if (!(addr >> 63)) {
		/* Lower half: user space of the selected thread's task, if it has one. */
		struct stub_thread *th = session_thread(c->t, c->s);
		if (th && th->pgd_pa) {
			o.as = KAS_USER;
			o.pgd_pa = th->pgd_pa;
		}
	}
	return kernel_read(c->t->kernel, &o, addr, buf, len, done);
}

/* m and x: answer what could be read; an error only if the first byte cannot be. */
static void read_memory(struct ctx *c, const char *args, bool binary)
{
	uint64_t addr, len;
	if (!parse_addr_len(args, "", &addr, &len)) {
		reply_error(c, ERR_SYNTAX, "bad memory read '%.40s'", args);
		return;
	}
	if (binary && len == 0) { /* LLDB probes `x` support with a zero-length read */
		rsp_buf_adds(&c->reply, "OK");
		return;
	}
	if (len > MAX_READ)
		len = MAX_READ;
	if (!c->t->read_buf && !(c->t->read_buf = malloc(MAX_READ))) {
		reply_error(c, ERR_MEMORY, "out of memory reading %llu bytes", (unsigned long long)len);
		return;
	}
	uint8_t *buf = c->t->read_buf;
	size_t done = 0;
	struct vm_error *err = session_read(c, addr, buf, len, &done);
	if (err && done == 0) {
		reply_error(c, ERR_MEMORY, "%s", err->message);
	} else {
		if (err) {
			/* Keep the reason: gdb asks again at the failing address and gets the error. */
			snprintf(c->s->last_error, sizeof(c->s->last_error), "%s", err->message);
		}
		/* Encoded straight into the output: no payload copy for the largest replies. */
		struct rsp_frame f;
		rsp_frame_begin(c->out, &f);
		if (binary) {
			if (c->s->binary_upload)
				rsp_frame_add(c->out, &f, "b", 1);
			rsp_frame_add(c->out, &f, buf, done);
		} else {
			rsp_frame_addhex(c->out, &f, buf, done);
		}
		rsp_frame_end(c->out, &f);
		c->replied = true;
	}
	vm_error_destroy(err);
}

static void h_read_memory_hex(struct ctx *c, const char *args)
{
	read_memory(c, args, false);
}

static void h_read_memory_binary(struct ctx *c, const char *args)
{
	read_memory(c, args, true);
}

static void h_write_memory(struct ctx *c, const char *args)
{
	(void)args;
	reply_read_only(c, "memory write");
}

static void h_write_registers(struct ctx *c, const char *args)
{
	(void)args;
	reply_read_only(c, "register write");
}

static void h_breakpoint(struct ctx *c, const char *args)
{
	static const char *const kinds[] = { "software breakpoint", "hardware breakpoint",
					     "write watchpoint", "read watchpoint", "access watchpoint" };
	int kind = args[0] >= '0' && args[0] <= '4' ? args[0] - '0' : 0;
	reply_read_only(c, kinds[kind]);
}

static void h_detach(struct ctx *c, const char *args)
{
	(void)args;
	c->s->ended = true;
	rsp_buf_adds(&c->reply, "OK");
}

static void h_kill(struct ctx *c, const char *args)
{
	(void)args;
	c->s->ended = true;
}

static void h_vkill(struct ctx *c, const char *args)
{
	(void)args;
	c->s->ended = true;
	rsp_buf_adds(&c->reply, "OK");
}

static bool feature_offered(const char *features, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = features; p && *p;) {
		size_t len = strcspn(p, ";");
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len;
		if (*p == ';')
			p++;
	}
	return false;
}

static void h_supported(struct ctx *c, const char *args)
{
	c->s->error_messages = feature_offered(args, "error-message+");
	c->s->binary_upload = feature_offered(args, "binary-upload+");
	rsp_buf_printf(&c->reply,
		       "PacketSize=%x;QStartNoAckMode+;qXfer:features:read+;qXfer:threads:read+;"
		       "qXfer:exec-file:read+;vContSupported+",
		       RSP_PACKET_SIZE);
	if (c->s->error_messages)
		rsp_buf_adds(&c->reply, ";error-message+");
	if (c->s->binary_upload)
		rsp_buf_adds(&c->reply, ";binary-upload+");
}

static void h_start_no_ack(struct ctx *c, const char *args)
{
	(void)args;
	/* The switch takes effect after this OK, which the client still acknowledges. */
	c->s->no_ack = true;
	rsp_buf_adds(&c->reply, "OK");
}

/* Serve a window of an object: 'm' + data if more follows, 'l' + data at the end. */
static void xfer_window(struct ctx *c, const char *data, size_t size, const char *window)
{
	uint64_t off, len;
	if (!parse_addr_len(window, "", &off, &len)) {
		reply_error(c, ERR_SYNTAX, "bad qXfer window '%.40s'", window);
		return;
	}
	if (len > MAX_READ)
		len = MAX_READ;
	if (off >= size) {
		rsp_buf_addc(&c->reply, 'l');
		return;
	}
	size_t n = size - off < len ? size - off : len;
	rsp_buf_addc(&c->reply, off + n < size ? 'm' : 'l');
	rsp_buf_add(&c->reply, data + off, n);
}

/* qXfer:OBJECT:read:ANNEX:OFFSET,LENGTH */
static void h_xfer(struct ctx *c, const char *args)
{
	char object[32], annex[64];
	const char *p = args;
	size_t n = strcspn(p, ":");
	if (n >= sizeof(object) || p[n] != ':') {
		reply_error(c, ERR_SYNTAX, "bad qXfer '%.40s'", args);
		return;
	}
	memcpy(object, p, n);
	object[n] = '\0';
	p += n + 1;
	if (strncmp(p, "read:", 5) != 0) {
		if (strncmp(p, "write:", 6) == 0)
			reply_read_only(c, "qXfer write");
		return; /* unknown operation: empty reply */
	}
	p += 5;
	n = strcspn(p, ":");
	if (n >= sizeof(annex) || p[n] != ':') {
		reply_error(c, ERR_SYNTAX, "bad qXfer annex in '%.40s'", args);
		return;
	}
	memcpy(annex, p, n);
	annex[n] = '\0';
	p += n + 1;

	if (strcmp(object, "features") == 0) {
		if (strcmp(annex, "target.xml") != 0) {
			reply_error(c, ERR_SYNTAX, "no feature document '%s'", annex);
			return;
		}
		const char *xml = tdesc_xml();
		xfer_window(c, xml, strlen(xml), p);
	} else if (strcmp(object, "threads") == 0) {
		struct rsp_buf xml;
		rsp_buf_init(&xml);
		threads_xml(target_threads(c->t), &xml);
		if (xml.failed)
			reply_error(c, ERR_MEMORY, "out of memory building the thread list");
		else
			xfer_window(c, xml.data, xml.len, p);
		rsp_buf_free(&xml);
	} else if (strcmp(object, "exec-file") == 0) {
		if (!c->t->vmlinux) {
			reply_error(c, ERR_NO_KERNEL, "no vmlinux was found for this dump");
			return;
		}
		xfer_window(c, c->t->vmlinux, strlen(c->t->vmlinux), p);
	}
	/* Other objects are not supported: empty reply. */
}

/* Console output for monitor commands, QEMU style: O<hex> packets, then the final reply. */
static void send_console(struct ctx *c, const char *text, size_t len)
{
	enum { CHUNK = 4096 };
	struct rsp_buf pkt;
	rsp_buf_init(&pkt);
	for (size_t off = 0; off < len; off += CHUNK) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;
		rsp_buf_reset(&pkt);
		rsp_buf_addc(&pkt, 'O');
		rsp_buf_addhex(&pkt, text + off, n);
		if (!pkt.failed)
			rsp_put_packet(c->out, pkt.data, pkt.len);
	}
	rsp_buf_free(&pkt);
}

static void h_monitor(struct ctx *c, const char *args)
{
	size_t hexlen = strlen(args);
	if (hexlen % 2) {
		reply_error(c, ERR_SYNTAX, "bad qRcmd: odd hex length");
		return;
	}
	char *cmd = malloc(hexlen / 2 + 1);
	if (!cmd || !rsp_unhex(args, hexlen / 2, (uint8_t *)cmd)) {
		free(cmd);
		reply_error(c, ERR_SYNTAX, "bad qRcmd: not hex");
		return;
	}
	cmd[hexlen / 2] = '\0';
	struct rsp_buf text;
	rsp_buf_init(&text);
	bool ok = monitor_run(c->t, c->s, cmd, &text);
	send_console(c, text.data ? text.data : "", text.len);
	if (ok)
		rsp_buf_adds(&c->reply, "OK");
	else
		reply_error(c, ERR_MONITOR, "monitor %.200s: %.280s", cmd,
			    text.len ? text.data : "failed");
	rsp_buf_free(&text);
	free(cmd);
}

static void h_phys_mode_query(struct ctx *c, const char *args)
{
	(void)args;
	rsp_buf_adds(&c->reply, c->s->phys_mode ? "1" : "0");
}

static void h_phys_mode_set(struct ctx *c, const char *args)
{
	if (strcmp(args, "0") != 0 && strcmp(args, "1") != 0) {
		reply_error(c, ERR_SYNTAX, "Qqemu.PhyMemMode takes 0 or 1");
		return;
	}
	c->s->phys_mode = args[0] == '1';
	rsp_buf_adds(&c->reply, "OK");
}

static void h_qemu_supported(struct ctx *c, const char *args)
{
	(void)args;
	rsp_buf_adds(&c->reply, "PhyMemMode");
}

static void h_host_info(struct ctx *c, const char *args)
{
	(void)args;
	lldb_host_info(c->t, &c->reply);
}

static void h_process_info(struct ctx *c, const char *args)
{
	(void)args;
	lldb_process_info(&c->reply);
}

typedef void handler_fn(struct ctx *c, const char *args);

static const struct handler {
	const char *name;
	handler_fn *fn;
} handlers[] = {
	/* one-letter packets */
	{ "?", h_stop_reason },
	{ "g", h_read_registers },
	{ "p", h_read_register },
	{ "m", h_read_memory_hex },
	{ "x", h_read_memory_binary },
	{ "H", h_set_thread },
	{ "T", h_thread_alive },
	{ "c", h_resume },
	{ "C", h_resume },
	{ "s", h_resume },
	{ "S", h_resume },
	{ "G", h_write_registers },
	{ "P", h_write_registers },
	{ "M", h_write_memory },
	{ "X", h_write_memory },
	{ "Z", h_breakpoint },
	{ "z", h_breakpoint },
	{ "D", h_detach },
	{ "k", h_kill },
	{ "!", h_empty },
	/* named packets: name ends at ':' ',' ';' */
	{ "qSupported", h_supported },
	{ "QStartNoAckMode", h_start_no_ack },
	{ "qXfer", h_xfer },
	{ "qC", h_current_thread },
	{ "qAttached", h_attached },
	{ "qfThreadInfo", h_thread_info_first },
	{ "qsThreadInfo", h_thread_info_next },
	{ "qThreadExtraInfo", h_thread_extra_info },
	{ "qRcmd", h_monitor },
	{ "qSymbol", h_ok },
	{ "qOffsets", h_empty }, /* KASLR: gdb would move only .text/.data/.bss; see gdbscripts */
	{ "qqemu.PhyMemMode", h_phys_mode_query },
	{ "Qqemu.PhyMemMode", h_phys_mode_set },
	{ "qqemu.Supported", h_qemu_supported },
	{ "vMustReplyEmpty", h_empty },
	{ "vCont?", h_vcont_query },
	{ "vCont", h_vcont },
	{ "vKill", h_vkill },
	/* LLDB extensions (lldb.h) */
	{ "qHostInfo", h_host_info },
	{ "qProcessInfo", h_process_info },
};

static const struct handler *find_handler(const char *pkt, const char **args)
{
	size_t namelen = 1;
	if (pkt[0] == 'q' || pkt[0] == 'Q' || pkt[0] == 'v')
		namelen = strcspn(pkt, ":,;");
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		if (strlen(handlers[i].name) == namelen && strncmp(handlers[i].name, pkt, namelen) == 0) {
			*args = pkt + namelen + (namelen > 1 && pkt[namelen] != '\0');
			return &handlers[i];
		}
	}
	return NULL;
}

void handle_packet(struct target *t, struct session *s, const char *pkt, size_t len,
		   struct rsp_buf *out)
{
	struct ctx c = { .t = t, .s = s, .out = out };
	rsp_buf_init(&c.reply);
	const char *args = "";
	/* Binary payloads (X) may hold NULs: handlers only see the text before the first one. */
	const struct handler *h = len ? find_handler(pkt, &args) : NULL;
	if (h)
		h->fn(&c, args);
	/* Unknown packets get the empty reply the protocol asks for. */
	if (c.reply.failed) {
		rsp_buf_reset(&c.reply);
		rsp_buf_printf(&c.reply, "E%02x", ERR_MEMORY);
	}
	if (!(h && h->fn == h_kill) && !c.replied)
		rsp_put_packet(out, c.reply.data ? c.reply.data : "", c.reply.len);
	rsp_buf_free(&c.reply);
}
