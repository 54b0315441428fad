#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rsp.h"

/* Sanitizer reports go to stderr: such builds never give it up (see release_stderr). */
#if defined(__SANITIZE_ADDRESS__)
#define KEEP_STDERR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KEEP_STDERR 1
#endif
#endif
#ifndef KEEP_STDERR
#define KEEP_STDERR 0
#endif

/*
 * Stop answering a client whose replies pile up unread (it keeps sending requests): its further
 * requests wait, unparsed, until the output drains. One read can hold thousands of requests.
 */
#define OUTPUT_HIGH_WATER (8u << 20)
/*
 * Write out replies once this much is pending, even amid a batch of pipelined requests: the
 * client decodes one reply while the next is encoded, instead of waiting for the whole batch.
 */
#define OUTPUT_FLUSH_AT (64u << 10)

struct client {
	int in_fd, out_fd;
	bool is_stdio;
	bool closing;         /* close once output is flushed */
	bool gone;            /* the peer closed or a write failed */
	struct rsp_parser parser;
	struct rsp_buf out;
	size_t out_head;      /* out[0, out_head) is written already */
	struct rsp_buf held;  /* input read but not parsed yet: the output was over the high-water mark */
	struct session session;
	char peer[64];
};

bool server_parse_listen(const char *spec, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon = strrchr(spec, ':');
	const char *h = "127.0.0.1";
	size_t hl = strlen(h);
	const char *p = spec;
	if (colon) {
		p = colon + 1;
		if (colon > spec) {
			h = spec;
			hl = (size_t)(colon - spec);
			if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
				h++;
				hl -= 2;
			}
		}
	}
	if (!*p || strlen(p) >= portlen || hl == 0 || hl >= hostlen)
		return false;
	for (const char *q = p; *q; q++)
		if (*q < '0' || *q > '9')
			return false;
	memcpy(host, h, hl);
	host[hl] = '\0';
	strcpy(port, p);
	return true;
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return false;
}

static void describe_addr(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];
	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(buf, buflen, "?");
		return;
	}
	snprintf(buf, buflen, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

static int open_listener(const char *spec)
{
	char host[256], port[16];
	if (!server_parse_listen(spec, host, sizeof(host), port, sizeof(port))) {
		fprintf(stderr, "vmcore-gdbserver: --listen '%s': expected HOST:PORT\n", spec);
		return -1;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		fprintf(stderr, "vmcore-gdbserver: --listen %s: %s\n", spec, gai_strerror(rc));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0) {
			if (!is_loopback(ai->ai_addr))
				fprintf(stderr, "vmcore-gdbserver: WARNING: listening on %s, not on loopback: "
					"anyone who can reach it can read the dump, which holds every secret "
					"the machine had (keys, passwords, memory of every process)\n", spec);
			break;
		}
		fprintf(stderr, "vmcore-gdbserver: cannot listen on %s: %s\n", spec, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char where[96];
		getsockname(fd, (struct sockaddr *)&ss, &len);
		describe_addr((struct sockaddr *)&ss, len, where, sizeof(where));
		/* Tests and scripts wait for this line; the port is the real one when 0 was asked. */
		fprintf(stderr, "vmcore-gdbserver: listening on %s\n", where);
	}
	return fd;
}

static void log_bytes(const char *dir, const char *peer, const char *data, size_t len)
{
	enum { SHOW = 200 };
	char text[SHOW + 1];
	size_t n = len < SHOW ? len : SHOW;
	for (size_t i = 0; i < n; i++)
		text[i] = data[i] >= 0x20 && data[i] < 0x7f ? data[i] : '.';
	text[n] = '\0';
	fprintf(stderr, "vmcore-gdbserver: %s %s %s%s\n", peer, dir, text, len > SHOW ? "..." : "");
}

static size_t client_pending(const struct client *c)
{
	return c->out.len - c->out_head;
}

/* Write what is pending without blocking a nonblocking peer; sets gone if the peer is. */
static void client_flush(struct client *c)
{
	while (client_pending(c)) {
		ssize_t n = write(c->out_fd, c->out.data + c->out_head, client_pending(c));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			c->gone = true;
			return;
		}
		c->out_head += (size_t)n;
	}
	if (c->out_head == c->out.len) {
		rsp_buf_reset(&c->out);
		c->out_head = 0;
	} else if (c->out_head >= c->out.len / 2) {
		/* Move the rest down only when that copies less than was written: linear overall. */
		memmove(c->out.data, c->out.data + c->out_head, client_pending(c));
		c->out.len = client_pending(c);
		c->out_head = 0;
	}
}

/* Parse and answer input; returns how much was used (less if the output reached the high-water mark). */
static size_t client_input(struct target *t, const struct server_options *o, struct client *c,
			   const uint8_t *data, size_t len)
{
	size_t i = 0;
	for (; i < len && !c->closing && !c->gone && client_pending(c) < OUTPUT_HIGH_WATER; i++) {
		enum rsp_event ev = rsp_parser_feed(&c->parser, data[i]);
		switch (ev) {
		case RSP_EV_PACKET: {
			if (!c->session.no_ack)
				rsp_buf_addc(&c->out, '+');
			if (o->debug)
				log_bytes("<-", c->peer, c->parser.packet, c->parser.len);
			size_t before = c->out.len;
			handle_packet(t, &c->session, c->parser.packet, c->parser.len, &c->out);
			if (o->debug)
				log_bytes("->", c->peer, c->out.data + before, c->out.len - before);
			if (c->session.ended)
				c->closing = true;
			else if (client_pending(c) >= OUTPUT_FLUSH_AT && !c->out.failed)
				client_flush(c);
			break;
		}
		case RSP_EV_BAD_CHECKSUM:
			if (o->debug)
				fprintf(stderr, "vmcore-gdbserver: %s: bad checksum, packet dropped\n", c->peer);
			if (!c->session.no_ack)
				rsp_buf_addc(&c->out, '-');
			break;
		case RSP_EV_TOO_LONG:
			/* Acknowledge and refuse, so the client neither resends it nor waits forever. */
			fprintf(stderr, "vmcore-gdbserver: %s: packet longer than %u bytes dropped\n", c->peer,
				RSP_PACKET_SIZE);
			if (!c->session.no_ack)
				rsp_buf_addc(&c->out, '+');
			rsp_put_packet(&c->out, "E01", 3);
			break;
		case RSP_EV_NONE:
		case RSP_EV_ACK:
		case RSP_EV_NACK:      /* reliable transports: nothing is resent */
		case RSP_EV_INTERRUPT: /* the target never runs, so there is nothing to interrupt */
		case RSP_EV_GARBAGE:
			break;
		}
	}
	if (c->out.failed) {
		fprintf(stderr, "vmcore-gdbserver: %s: out of memory, closing\n", c->peer);
		rsp_buf_reset(&c->out);
		c->out_head = 0;
		c->closing = true;
	}
	return i;
}

/*
 * gdb reads the stderr of a `target remote | CMD` command with one read() per character it
 * receives from the stub for as long as that channel is open (gdb/ser-base.c, generic_readchar):
 * a 4 MiB `dump binary memory` took 2.4 s instead of 0.32 s. So in --stdio mode, once the
 * session is set up (the thread list is built and its warning, if any, shown), stderr goes to
 * /dev/null: gdb sees the end of the channel and stops polling it. Not with --debug, which asks
 * for logs, and only for a socket or pipe: a file or a terminal costs gdb nothing.
 */
static void release_stderr(void)
{
	struct stat st;
	if (KEEP_STDERR || fstat(STDERR_FILENO, &st) != 0 || !(S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode)))
		return;
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

/* Answer held input once the output has drained below the high-water mark. */
static void client_resume(struct target *t, const struct server_options *o, struct client *c)
{
	if (!c->held.len || client_pending(c) >= OUTPUT_HIGH_WATER || c->closing || c->gone)
		return;
	size_t used = client_input(t, o, c, (const uint8_t *)c->held.data, c->held.len);
	memmove(c->held.data, c->held.data + used, c->held.len - used);
	c->held.len -= used;
}

static struct client *client_new(int in_fd, int out_fd, bool is_stdio, const char *peer, bool zero_excluded)
{
	struct client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->in_fd = in_fd;
	c->out_fd = out_fd;
	c->is_stdio = is_stdio;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	rsp_parser_init(&c->parser, RSP_PACKET_SIZE);
	rsp_buf_init(&c->out);
	rsp_buf_init(&c->held);
	session_init(&c->session, zero_excluded);
	return c;
}

static void client_free(struct client *c)
{
	if (!c->is_stdio)
		close(c->in_fd);
	rsp_parser_free(&c->parser);
	rsp_buf_free(&c->out);
	rsp_buf_free(&c->held);
	free(c);
}

static void accept_clients(int lfd, struct client **clients, int *nclients, const struct server_options *o)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		char peer[64];
		describe_addr((struct sockaddr *)&ss, len, peer, sizeof(peer));
		if (*nclients >= o->max_clients) {
			fprintf(stderr, "vmcore-gdbserver: %s: refused, already %d clients\n", peer, *nclients);
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct client *c = client_new(fd, fd, false, peer, o->zero_excluded);
		if (!c) {
			close(fd);
			continue;
		}
		if (o->debug)
			fprintf(stderr, "vmcore-gdbserver: %s connected\n", peer);
		clients[(*nclients)++] = c;
	}
}

int server_run(struct target *t, const struct server_options *o)
{
	int lfd = -1;
	int max = o->use_stdio ? 1 : (o->max_clients > 0 ? o->max_clients : 1);
	struct client **clients = calloc((size_t)max, sizeof(*clients));
	struct pollfd *fds = calloc((size_t)max * 2 + 1, sizeof(*fds));
	int nclients = 0;
	int rc = 0;
	if (!clients || !fds) {
		fprintf(stderr, "vmcore-gdbserver: out of memory\n");
		free(clients);
		free(fds);
		return 1;
	}
	if (o->use_stdio) {
		clients[nclients++] = client_new(0, 1, true, "stdio", o->zero_excluded);
		if (!clients[0]) {
			free(clients);
			free(fds);
			return 1;
		}
	} else {
		lfd = open_listener(o->listen);
		if (lfd < 0) {
			free(clients);
			free(fds);
			return 1;
		}
	}
	uint8_t *inbuf = malloc(65536);
	if (!inbuf) {
		rc = 1;
		goto out;
	}
	bool stderr_released = false;
	for (;;) {
		if (o->use_stdio && nclients == 0)
			break;
		if (o->use_stdio && !o->debug && !stderr_released && t->threads_built) {
			release_stderr();
			stderr_released = true;
		}
		int nfds = 0;
		if (lfd >= 0)
			fds[nfds++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (int i = 0; i < nclients; i++) {
			struct client *c = clients[i];
			client_resume(t, o, c);
			bool want_in = !c->closing && !c->held.len && client_pending(c) < OUTPUT_HIGH_WATER;
			fds[nfds++] = (struct pollfd){ .fd = want_in ? c->in_fd : -1, .events = POLLIN };
			fds[nfds++] = (struct pollfd){ .fd = client_pending(c) ? c->out_fd : -1, .events = POLLOUT };
		}
		if (poll(fds, (nfds_t)nfds, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "vmcore-gdbserver: poll: %s\n", strerror(errno));
			rc = 1;
			break;
		}
		int base = lfd >= 0 ? 1 : 0;
		for (int i = 0; i < nclients; i++) {
			struct client *c = clients[i];
			struct pollfd *pin = &fds[base + 2 * i], *pout = &fds[base + 2 * i + 1];
			if (pin->revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t n = read(c->in_fd, inbuf, 65536);
				if (n > 0) {
					size_t used = client_input(t, o, c, inbuf, (size_t)n);
					if (used < (size_t)n && !c->closing && !c->gone)
						rsp_buf_add(&c->held, inbuf + used, (size_t)n - used);
					if (c->held.failed) {
						fprintf(stderr, "vmcore-gdbserver: %s: out of memory, closing\n", c->peer);
						c->closing = true;
					}
				} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
					c->gone = true;
				}
			}
			if (!c->gone && client_pending(c) && (pout->revents & (POLLOUT | POLLERR | POLLHUP) || c->closing))
				client_flush(c);
			if (c->gone || (c->closing && !client_pending(c))) {
				if (o->debug)
					fprintf(stderr, "vmcore-gdbserver: %s disconnected\n", c->peer);
				client_free(c);
				clients[i] = NULL;
			}
		}
		/* Compact after the loop: fds[] indexes follow the old order. */
		int k = 0;
		for (int i = 0; i < nclients; i++)
			if (clients[i])
				clients[k++] = clients[i];
		nclients = k;
		if (lfd >= 0 && (fds[0].revents & POLLIN))
			accept_clients(lfd, clients, &nclients, o);
	}
out:
	free(inbuf);
	for (int i = 0; i < nclients; i++)
		client_free(clients[i]);
	if (lfd >= 0)
		close(lfd);
	free(clients);
	free(fds);
	return rc;
}
