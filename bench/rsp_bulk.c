/*
 * A minimal GDB remote-protocol client for the benchmarks: it starts the stub on a socketpair
 * (the stub's stdio transport, as `target remote | cmd` does) or connects to a TCP port, and
 *
 *   rsp_bulk ready [--tcp HOST:PORT] -- CMD...
 *       times start -> first answered packet (qSupported), -> stop reply (`?`) and -> complete
 *       thread list (qfThreadInfo/qsThreadInfo), then counts the threads;
 *   rsp_bulk read --start ADDR --len BYTES [--deref ADDR] [--phys] [--chunk N] [--window N]
 *                 [--packet auto|m|x] [--tcp HOST:PORT] -- CMD...
 *       switches to no-ack mode and reads [start, start+len) with requests sent back to back,
 *       up to --window outstanding, and prints MB/s and a checksum (bench/checksum.h).
 *       --packet: `m` (hex, what gdb 13 sends), `x` (binary, what LLDB sends), or auto (the
 *       default): `x` if the stub answers LLDB's probe, a zero-length `x`, with OK.
 *       --deref: the start is relative to the u64 stored at ADDR (e.g. page_offset_base);
 *       --phys: read physical addresses (Qqemu.PhyMemMode:1).
 *
 * When it started the stub itself it closes the connection, waits for it and reports the stub's
 * peak RSS (ru_maxrss) as well. Output: one JSON object on stdout; errors on stderr, exit 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checksum.h"

struct conn {
	int fd;
	pid_t child; /* 0 when connected over TCP */
	bool noack;
	/* Received bytes; a reply is decoded where it lies, so the buffer holds the largest one. */
	unsigned char *in;
	size_t in_cap, in_pos, in_len;
	char *pkt; /* last reply (in `in`, or in `rle` if it was run-length encoded), NUL-terminated */
	size_t pkt_len;
	char *rle;
	size_t rle_len, rle_cap;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("rsp_bulk: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void write_all(struct conn *c, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(c->fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write to stub: %s", n < 0 ? strerror(errno) : "closed");
		buf += n;
		len -= n;
	}
}

/* Read more after the bytes not consumed yet, first moving them to the front when room runs low. */
static void fill(struct conn *c)
{
	if (c->in_pos == c->in_len) {
		c->in_pos = c->in_len = 0;
	} else if (c->in_cap - c->in_len < c->in_cap / 4) {
		memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
		c->in_len -= c->in_pos;
		c->in_pos = 0;
	}
	if (c->in_len == c->in_cap)
		die("a reply is longer than %zu bytes", c->in_cap);
	ssize_t n;
	do
		n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		die("stub closed the connection%s%s", n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
	c->in_len += (size_t)n;
}

static int read_byte(struct conn *c)
{
	if (c->in_pos == c->in_len)
		fill(c);
	return c->in[c->in_pos++];
}

static size_t frame(char *out, const char *payload)
{
	unsigned sum = 0;
	for (const char *p = payload; *p; p++)
		sum += (unsigned char)*p;
	return sprintf(out, "$%s#%02x", payload, sum & 0xff);
}

static void send_packet(struct conn *c, const char *payload)
{
	size_t len = strlen(payload) + 5;
	char *buf = malloc(len);
	if (!buf)
		die("out of memory");
	write_all(c, buf, frame(buf, payload));
	free(buf);
}

static void rle_append(struct conn *c, const void *data, size_t len)
{
	if (c->rle_len + len + 1 > c->rle_cap) {
		while (c->rle_len + len + 1 > c->rle_cap)
			c->rle_cap = c->rle_cap ? c->rle_cap * 2 : 4096;
		c->rle = realloc(c->rle, c->rle_cap);
		if (!c->rle)
			die("out of memory");
	}
	memcpy(c->rle + c->rle_len, data, len);
	c->rle_len += len;
}

/* Expand run-length encoding ("c*n": n - 29 more copies of c) into c->rle. */
static void expand_runs(struct conn *c)
{
	const char *raw = c->pkt;
	size_t len = c->pkt_len;
	if (!memchr(raw, '*', len))
		return;
	c->rle_len = 0;
	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '*' && i > 0 && i + 1 < len) {
			char rep = raw[i - 1];
			for (int k = 0; k < (unsigned char)raw[i + 1] - 29; k++)
				rle_append(c, &rep, 1);
			i++;
		} else {
			rle_append(c, raw + i, 1);
		}
	}
	c->pkt = c->rle;
	c->pkt_len = c->rle_len;
}

/*
 * Next `$...#xx` packet, valid until the next call; acks and notifications before it are
 * skipped. The payload is left where it was received: the client must outpace the stub.
 */
static void recv_packet(struct conn *c)
{
	int ch;
	for (;;) {
		ch = read_byte(c);
		if (ch == '$')
			break;
		if (ch == '%') /* notification: skip to its checksum */
			while (read_byte(c) != '#')
				;
	}
	/* Escapes never produce a '#': the first one ends the payload. fill() keeps in_pos's bytes. */
	size_t scanned = 0, len;
	for (;;) {
		const unsigned char *body = c->in + c->in_pos;
		size_t avail = c->in_len - c->in_pos;
		const unsigned char *hash = memchr(body + scanned, '#', avail - scanned);
		if (hash && (size_t)(hash - body) + 3 <= avail) {
			len = (size_t)(hash - body);
			break;
		}
		scanned = hash ? (size_t)(hash - body) : avail;
		fill(c);
	}
	c->pkt = (char *)c->in + c->in_pos;
	c->pkt_len = len;
	c->in_pos += len + 3;
	c->pkt[len] = '\0';
	expand_runs(c);
	c->pkt[c->pkt_len] = '\0';
	if (!c->noack)
		write_all(c, "+", 1);
}

static const char *transact(struct conn *c, const char *payload)
{
	send_packet(c, payload);
	recv_packet(c);
	return c->pkt;
}

static void spawn(struct conn *c, char **cmd)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		die("socketpair: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		dup2(sv[1], 0);
		dup2(sv[1], 1);
		close(sv[1]);
		execvp(cmd[0], cmd);
		fprintf(stderr, "rsp_bulk: exec %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	close(sv[1]);
	c->fd = sv[0];
	c->child = pid;
}

static void connect_tcp(struct conn *c, const char *hostport)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	if (!colon || (size_t)(colon - hostport) >= sizeof(host))
		die("--tcp wants HOST:PORT, got %s", hostport);
	memcpy(host, hostport, colon - hostport);
	host[colon - hostport] = '\0';
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
	int rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc)
		die("%s: %s", hostport, gai_strerror(rc));
	c->fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
	if (c->fd < 0 || connect(c->fd, ai->ai_addr, ai->ai_addrlen))
		die("connect %s: %s", hostport, strerror(errno));
	freeaddrinfo(ai);
	c->child = 0;
}

/* Close the connection; if we started the stub, wait for it and return its peak RSS in KiB. */
static long finish(struct conn *c)
{
	close(c->fd);
	if (!c->child)
		return -1;
	struct rusage ru;
	int status;
	double deadline = now() + 10;
	for (;;) {
		pid_t r = wait4(c->child, &status, WNOHANG, &ru);
		if (r == c->child)
			return ru.ru_maxrss;
		if (now() > deadline) {
			/* A stub that ignores EOF on its transport: still measure it. */
			kill(c->child, SIGTERM);
			if (wait4(c->child, &status, 0, &ru) == c->child)
				return ru.ru_maxrss;
			return -1;
		}
		usleep(1000);
	}
}

/* A hex digit's value and validity by arithmetic, without tables or branches: loops vectorize. */
static inline unsigned nibble(unsigned char ch)
{
	return (ch & 0xfu) + 9u * (ch >> 6);
}

static inline unsigned not_hex(unsigned char ch)
{
	return (unsigned)((unsigned char)(ch - '0') >= 10u) & ((unsigned char)((ch | 0x20) - 'a') >= 6u);
}

static inline unsigned unhex_one(const unsigned char *h, unsigned char *out)
{
	*out = (unsigned char)(nibble(h[0]) << 4 | nibble(h[1]));
	return not_hex(h[0]) | not_hex(h[1]);
}

/* Decode 2*n hex digits; false on a bad digit. Fixed-length blocks so that the compiler vectorizes. */
static bool unhex(const char *hex, size_t n, unsigned char *restrict out)
{
	enum { BLOCK = 32 };
	const unsigned char *restrict h = (const unsigned char *)hex;
	unsigned bad = 0;
	size_t i = 0;
	for (; i + BLOCK <= n; i += BLOCK)
		for (size_t k = i; k < i + BLOCK; k++)
			bad |= unhex_one(h + 2 * k, out + k);
	for (; i < n; i++)
		bad |= unhex_one(h + 2 * i, out + i);
	return !bad;
}

/* Undo `x` reply escapes ("}" then the byte xor 0x20); returns the decoded length. */
static size_t unescape(const char *in, size_t len, unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		const char *esc = memchr(in + i, '}', len - i);
		size_t n = esc ? (size_t)(esc - (in + i)) : len - i;
		memcpy(out + o, in + i, n);
		o += n;
		i += n;
		if (esc && i + 1 < len) {
			out[o++] = (unsigned char)(in[i + 1] ^ 0x20);
			i += 2;
		} else if (esc) {
			i++; /* a trailing lone escape: ignore */
		}
	}
	return o;
}

/* The stub's PacketSize; the input buffer grows to hold two packets that large. */
static size_t packet_size(struct conn *c, const char *qsupported)
{
	const char *p = strstr(qsupported, "PacketSize=");
	size_t size = p ? strtoul(p + 11, NULL, 16) : 0;
	if (size > (1u << 30))
		die("PacketSize=%zx is not plausible", size);
	if (2 * size + 64 > c->in_cap) {
		c->in_cap = 2 * size + 64;
		if (!(c->in = realloc(c->in, c->in_cap)))
			die("out of memory");
	}
	return size;
}

static const char *hello(struct conn *c)
{
	write_all(c, "+", 1);
	return transact(c, "qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;"
			   "vfork-events+;exec-events+;vContSupported+;QThreadEvents+;no-resumed+;"
			   "xmlRegisters=i386");
}

/* t0: just before the stub was started (or the TCP connection made). */
static int cmd_ready(struct conn *c, double t0)
{
	hello(c);
	double t_first = now() - t0;
	transact(c, "?");
	double t_stop = now() - t0;
	char stop[64];
	snprintf(stop, sizeof(stop), "%.60s", c->pkt);
	long threads = 0;
	const char *reply = transact(c, "qfThreadInfo");
	while (reply[0] == 'm') {
		threads++;
		for (const char *p = reply; *p; p++)
			threads += *p == ',';
		reply = transact(c, "qsThreadInfo");
	}
	double t_threads = now() - t0;
	long rss = finish(c);
	printf("{\"first_reply_seconds\": %.6f, \"stop_reply_seconds\": %.6f, \"thread_list_seconds\": %.6f, "
	       "\"threads\": %ld, \"stop_reply\": \"",
	       t_first, t_stop, t_threads, threads);
	for (const char *p = stop; *p; p++)
		if (*p != '"' && *p != '\\')
			putchar(*p);
	printf("\", \"stub_maxrss_kb\": %ld}\n", rss);
	return 0;
}

static uint64_t read_u64(struct conn *c, uint64_t addr)
{
	char req[64];
	snprintf(req, sizeof(req), "m%" PRIx64 ",8", addr);
	const char *r = transact(c, req);
	if (strlen(r) != 16)
		die("reading 8 bytes at 0x%" PRIx64 ": reply '%.80s'", addr, r);
	unsigned char b[8];
	if (!unhex(r, 8, b))
		die("reading 8 bytes at 0x%" PRIx64 ": bad hex in '%s'", addr, r);
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static int cmd_read(struct conn *c, uint64_t start, uint64_t len, uint64_t deref, bool phys, size_t chunk,
		    int window, const char *packet)
{
	size_t psize = packet_size(c, hello(c));
	if (strcmp(transact(c, "QStartNoAckMode"), "OK") == 0)
		c->noack = true;
	if (deref)
		start += read_u64(c, deref);
	if (phys && strcmp(transact(c, "Qqemu.PhyMemMode:1"), "OK") != 0)
		die("stub refused Qqemu.PhyMemMode:1: '%.80s'", c->pkt);
	bool binary = !strcmp(packet, "x");
	if (!strcmp(packet, "auto")) {
		char probe[48];
		snprintf(probe, sizeof(probe), "x%" PRIx64 ",0", start);
		binary = !strcmp(transact(c, probe), "OK");
	}
	/*
	 * An `m` reply carries two hex digits per byte, an `x` reply up to two bytes per byte when
	 * every one is escaped; plus framing. Keep a margin and whole pages.
	 */
	if (psize > 128 && chunk > (psize - 64) / 2) {
		chunk = (psize - 64) / 2;
		chunk &= chunk >= 4096 ? ~(size_t)4095 : ~(size_t)7;
	}
	if (chunk == 0)
		die("packet size %zu too small", psize);

	/* Twice a chunk: an `x` reply up to that long decodes into it before its length is checked. */
	unsigned char *buf = malloc(2 * chunk);
	char *reqs = malloc((size_t)window * 48);
	if (!buf || !reqs)
		die("out of memory");
	uint64_t sum = BENCH_CHECKSUM_SEED, sent = 0, done = 0;
	int inflight = 0;
	double t0 = now();
	while (done < len) {
		size_t rlen = 0;
		while (inflight < window && sent < len) {
			size_t n = len - sent < chunk ? len - sent : chunk;
			char payload[48];
			snprintf(payload, sizeof(payload), "%c%" PRIx64 ",%zx", binary ? 'x' : 'm', start + sent, n);
			rlen += frame(reqs + rlen, payload);
			sent += n;
			inflight++;
		}
		if (rlen)
			write_all(c, reqs, rlen);
		recv_packet(c);
		inflight--;
		size_t want = len - done < chunk ? len - done : chunk;
		char kind = binary ? 'x' : 'm';
		if (c->pkt[0] == 'E' && c->pkt_len < 256)
			die("%c 0x%" PRIx64 ",0x%zx: error reply '%s'", kind, start + done, want, c->pkt);
		if (binary) {
			/* Without escapes the payload is the data itself: no copy. */
			const unsigned char *data = (const unsigned char *)c->pkt;
			size_t got = c->pkt_len;
			if (c->pkt_len > 2 * chunk)
				die("x 0x%" PRIx64 ",0x%zx: reply of %zu chars", start + done, want, c->pkt_len);
			if (memchr(c->pkt, '}', c->pkt_len)) {
				got = unescape(c->pkt, c->pkt_len, buf);
				data = buf;
			}
			if (got != want)
				die("x 0x%" PRIx64 ",0x%zx: reply of %zu bytes", start + done, want, got);
			sum = bench_checksum(sum, data, want);
		} else {
			if (c->pkt_len != 2 * want)
				die("m 0x%" PRIx64 ",0x%zx: reply of %zu chars: '%.80s'", start + done, want, c->pkt_len,
				    c->pkt);
			if (!unhex(c->pkt, want, buf))
				die("m 0x%" PRIx64 ": bad hex in reply '%.80s'", start + done, c->pkt);
			sum = bench_checksum(sum, buf, want);
		}
		done += want;
	}
	double secs = now() - t0;
	struct rusage self;
	getrusage(RUSAGE_SELF, &self);
	double client_cpu = self.ru_utime.tv_sec + self.ru_utime.tv_usec / 1e6 + self.ru_stime.tv_sec +
			    self.ru_stime.tv_usec / 1e6;
	long rss = finish(c);
	printf("{\"seconds\": %.6f, \"bytes\": %" PRIu64 ", \"mbps\": %.2f, \"checksum\": \"%016" PRIx64
	       "\", \"start\": \"0x%" PRIx64 "\", \"chunk\": %zu, \"window\": %d, \"packet_size\": %zu, "
	       "\"noack\": %s, \"packet\": \"%c\", \"client_cpu_seconds\": %.3f, \"stub_maxrss_kb\": %ld}\n",
	       secs, len, len / secs / 1e6, sum, start, chunk, window, psize, c->noack ? "true" : "false",
	       binary ? 'x' : 'm', client_cpu, rss);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: rsp_bulk ready [--tcp HOST:PORT] -- CMD...\n"
			"       rsp_bulk read --start ADDR --len BYTES [--deref ADDR] [--phys] [--chunk N]\n"
			"                     [--window N] [--packet auto|m|x] [--tcp HOST:PORT] -- CMD...\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	signal(SIGPIPE, SIG_IGN);
	uint64_t start = 0, len = 0, deref = 0;
	size_t chunk = 1 << 16;
	int window = 32;
	bool phys = false;
	const char *tcp = NULL, *packet = "auto";
	int i = 2;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (!strcmp(argv[i], "--phys")) {
			phys = true;
			continue;
		}
		if (i + 1 >= argc)
			return usage();
		const char *v = argv[++i];
		if (!strcmp(argv[i - 1], "--tcp"))
			tcp = v;
		else if (!strcmp(argv[i - 1], "--start"))
			start = strtoull(v, NULL, 0);
		else if (!strcmp(argv[i - 1], "--len"))
			len = strtoull(v, NULL, 0);
		else if (!strcmp(argv[i - 1], "--deref"))
			deref = strtoull(v, NULL, 0);
		else if (!strcmp(argv[i - 1], "--chunk"))
			chunk = strtoull(v, NULL, 0);
		else if (!strcmp(argv[i - 1], "--window"))
			window = atoi(v);
		else if (!strcmp(argv[i - 1], "--packet") && (!strcmp(v, "auto") || !strcmp(v, "m") || !strcmp(v, "x")))
			packet = v;
		else
			return usage();
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c || !(c->in = malloc(c->in_cap = 1 << 18)))
		die("out of memory");
	double t0 = now();
	if (tcp)
		connect_tcp(c, tcp);
	else if (i + 1 < argc)
		spawn(c, argv + i + 1);
	else
		return usage();
	if (!strcmp(argv[1], "ready"))
		return cmd_ready(c, t0);
	if (!strcmp(argv[1], "read") && len > 0 && chunk >= 8 && window >= 1)
		return cmd_read(c, start, len, deref, phys, chunk & ~(size_t)7, window, packet);
	return usage();
}
