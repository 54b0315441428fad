// SPDX-License-Identifier: GPL-2.0
/*
 * User-space side of the sample scenarios, linked statically into the guest.
 *
 *   vmgs-helper busy NPROC   NPROC processes of 4 threads each, every thread
 *                            parked in a different kind of wait (futex,
 *                            poll, nanosleep, pipe read), one spinner pinned
 *                            to each CPU but 0, a zombie and a stopped task;
 *                            prints "busy ready <ntasks>" once every sleeper
 *                            thread exists and has named itself, and stays
 *                            in the background.
 *   vmgs-helper skbpair PROCFILE
 *                            makes a loopback TCP pair, writes the reader's
 *                            fd number to PROCFILE (the module then queues
 *                            the bad skb on that socket) and reads it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "vmgs-helper: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Each kind of task gets its own comm, so a test can pick one by name. */
static void name(const char *comm)
{
	prctl(PR_SET_NAME, comm, 0, 0, 0);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
/* A sleeper's four threads meet here once named, so its parent knows they all exist. */
static pthread_barrier_t named;

static void *wait_futex(void *arg)
{
	(void)arg;
	name("vmgs-futex");
	pthread_barrier_wait(&named);
	pthread_mutex_lock(&lock);
	for (;;)
		pthread_cond_wait(&never, &lock);
	return NULL;
}

static void *wait_poll(void *arg)
{
	struct pollfd pfd = { .fd = *(int *)arg, .events = POLLIN };

	name("vmgs-poll");
	pthread_barrier_wait(&named);
	for (;;)
		poll(&pfd, 1, -1);
	return NULL;
}

static void *wait_sleep(void *arg)
{
	struct timespec ts = { .tv_sec = 100000 };

	(void)arg;
	name("vmgs-sleep");
	pthread_barrier_wait(&named);
	for (;;)
		nanosleep(&ts, NULL);
	return NULL;
}

/*
 * One sleeper process: its main thread blocks in read(), three threads wait
 * otherwise. Once all four are named it writes one byte to ready_fd and
 * closes it: the parent counts the bytes (an early EOF means a sleeper died).
 */
static void sleeper(int ready_fd)
{
	int fds[2];
	pthread_t t;
	char c = 1;

	name("vmgs-read");
	if (pipe(fds))
		die("pipe");
	if (pthread_barrier_init(&named, NULL, 4))
		die("pthread_barrier_init");
	if (pthread_create(&t, NULL, wait_futex, NULL) ||
	    pthread_create(&t, NULL, wait_poll, &fds[0]) ||
	    pthread_create(&t, NULL, wait_sleep, NULL))
		die("pthread_create");
	pthread_barrier_wait(&named);
	if (write(ready_fd, &c, 1) != 1)
		die("write ready");
	close(ready_fd);
	for (;;)
		if (read(fds[0], &c, 1) < 0 && errno != EINTR)
			die("read");
}

static void spinner(int cpu)
{
	cpu_set_t set;
	volatile unsigned long n = 0;

	name("vmgs-spin");
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
	for (;;)
		n++;
}

static pid_t spawn(void (*body)(void))
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		body();
		_exit(0);
	}
	return pid;
}

static void exit_now(void)
{
	name("vmgs-zombie");
	_exit(0);
}

static void stop_self(void)
{
	name("vmgs-stopped");
	raise(SIGSTOP);
	for (;;)
		pause();
}

static _Noreturn void busy(int nproc)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int ntasks = 0, status, ready[2];
	pid_t pid;
	char buf[256];
	ssize_t n;

	if (pipe(ready))
		die("pipe");
	for (int i = 0; i < nproc; i++, ntasks += 4) {
		pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			close(ready[0]);
			sleeper(ready[1]);
		}
	}
	close(ready[1]);
	for (int got = 0; got < nproc; got += n) {
		n = read(ready[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			n = 0;
		else if (n <= 0) {
			fprintf(stderr, "vmgs-helper: only %d of %d sleepers got ready\n", got, nproc);
			exit(1);
		}
	}
	close(ready[0]);
	for (int cpu = 1; cpu < ncpu; cpu++, ntasks++) {
		pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0)
			spinner(cpu);
	}
	/* The zombie: exits at once and is never reaped by us (we wait only for the stopped one). */
	spawn(exit_now);
	ntasks++;
	pid = spawn(stop_self);
	ntasks++;
	if (waitpid(pid, &status, WUNTRACED) != pid || !WIFSTOPPED(status))
		die("waitpid stopped child");
	printf("busy ready %d\n", ntasks);
	fflush(stdout);
	for (;;)
		pause();
}

static int skbpair(const char *procfile)
{
	struct sockaddr_in addr = { .sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int lsn, writer, reader;
	char buf[4096];
	FILE *f;

	lsn = socket(AF_INET, SOCK_STREAM, 0);
	if (lsn < 0 || bind(lsn, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(lsn, 1) || getsockname(lsn, (struct sockaddr *)&addr, &len))
		die("listen socket");
	writer = socket(AF_INET, SOCK_STREAM, 0);
	if (writer < 0 || connect(writer, (struct sockaddr *)&addr, sizeof(addr)))
		die("connect");
	reader = accept(lsn, NULL, NULL);
	if (reader < 0)
		die("accept");
	f = fopen(procfile, "w");
	if (!f || fprintf(f, "%d\n", reader) < 0 || fclose(f))
		die(procfile);
	/* The queued skb is copied here; hardened usercopy stops the kernel. */
	if (read(reader, buf, sizeof(buf)) < 0)
		die("read");
	fprintf(stderr, "vmgs-helper: read returned without a crash\n");
	return 1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "busy"))
		busy(atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "skbpair"))
		return skbpair(argv[2]);
	fprintf(stderr, "usage: vmgs-helper busy NPROC | skbpair PROCFILE\n");
	return 2;
}
