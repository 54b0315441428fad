/* vmcore-gdbserver: serve a Linux crash dump to gdb over the remote serial protocol. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../memmodel/dump.h"
#include "../memmodel/kernel.h"
#include "handlers.h"
#include "locate.h"
#include "monitor.h"
#include "server.h"
#include "sigpipe.h"

static const char usage_text[] =
	"usage: vmcore-gdbserver [--listen HOST:PORT | --stdio] [--tasks=all|active|none]\n"
	"                        [--zero-excluded] [--vmlinux PATH] [--debug] DUMP [DUMP...]\n"
	"\n"
	"Serve a Linux x86_64 crash dump to gdb as a halted, multi-threaded remote target:\n"
	"one thread per CPU (thread N = CPU N-1), then one per task.\n"
	"\n"
	"  --listen HOST:PORT  TCP address (default 127.0.0.1:1234; port 0 picks a free one)\n"
	"  --stdio             one session on stdin/stdout: target remote | vmcore-gdbserver --stdio DUMP\n"
	"  --tasks=MODE        all (default), active (running or D state), none (CPUs only)\n"
	"  --zero-excluded     read pages the dump left out as zeros instead of failing\n"
	"  --vmlinux PATH      vmlinux with debug info (default: found from the dump's BUILD-ID)\n"
	"  --max-clients N     simultaneous TCP clients (default 16)\n"
	"  --debug             log packets and errors on stderr\n"
	"  --help, --version\n"
	"\n"
	"Several files are the parts of one split dump. The dump is never written.\n";

static char *cache_dir(void)
{
	const char *env = getenv("VMCORE_GDBSERVER_CACHE");
	char *dir = NULL;
	if (env && *env)
		return strdup(env);
	if ((env = getenv("XDG_CACHE_HOME")) && *env) {
		if (asprintf(&dir, "%s/vmcore-gdbserver", env) < 0)
			return NULL;
		return dir;
	}
	if ((env = getenv("HOME")) && *env) {
		if (asprintf(&dir, "%s/.cache/vmcore-gdbserver", env) < 0)
			return NULL;
		return dir;
	}
	return NULL;
}

static int serve(int argc, char **argv)
{
	enum { OPT_TASKS = 256, OPT_ZERO, OPT_VMLINUX, OPT_DEBUG, OPT_STDIO, OPT_LISTEN, OPT_MAX };
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "stdio", no_argument, NULL, OPT_STDIO },
		{ "tasks", required_argument, NULL, OPT_TASKS },
		{ "zero-excluded", no_argument, NULL, OPT_ZERO },
		{ "vmlinux", required_argument, NULL, OPT_VMLINUX },
		{ "max-clients", required_argument, NULL, OPT_MAX },
		{ "debug", no_argument, NULL, OPT_DEBUG },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct server_options so = { .listen = "127.0.0.1:1234", .max_clients = 16 };
	enum tasks_mode tasks = TASKS_ALL;
	const char *vmlinux_arg = NULL;
	bool listen_given = false;
	int c;
	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN: so.listen = optarg; listen_given = true; break;
		case OPT_STDIO: so.use_stdio = true; break;
		case OPT_ZERO: so.zero_excluded = true; break;
		case OPT_VMLINUX: vmlinux_arg = optarg; break;
		case OPT_DEBUG: so.debug = true; break;
		case OPT_MAX:
			so.max_clients = atoi(optarg);
			if (so.max_clients < 1) {
				fprintf(stderr, "vmcore-gdbserver: --max-clients needs a positive number\n");
				return 2;
			}
			break;
		case OPT_TASKS:
			if (strcmp(optarg, "all") == 0)
				tasks = TASKS_ALL;
			else if (strcmp(optarg, "active") == 0)
				tasks = TASKS_ACTIVE;
			else if (strcmp(optarg, "none") == 0)
				tasks = TASKS_NONE;
			else {
				fprintf(stderr, "vmcore-gdbserver: --tasks takes all, active or none, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': printf("vmcore-gdbserver %s\n", STUB_VERSION); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (so.use_stdio && listen_given) {
		fprintf(stderr, "vmcore-gdbserver: --stdio and --listen exclude each other\n");
		return 2;
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return 2;
	}

	struct dump *dump = NULL;
	struct kernel *kernel = NULL;
	char *vmlinux = vmlinux_arg ? strdup(vmlinux_arg) : NULL;
	int rc = 1;
	struct vm_error *err = dump_open((const char *const *)argv + optind, (size_t)(argc - optind), NULL, &dump);
	if (err) {
		fprintf(stderr, "vmcore-gdbserver: %s\n", err->message);
		goto out;
	}
	if (!vmlinux) {
		char *cache = cache_dir();
		err = locate_vmlinux(dump, cache, &vmlinux);
		free(cache);
		if (err) {
			/* Still useful without it: CPU threads, registers and memory. */
			fprintf(stderr, "vmcore-gdbserver: warning: %s\n", err->message);
			vm_error_destroy(err);
		}
	}
	err = kernel_open(dump, vmlinux, &kernel);
	if (err) {
		fprintf(stderr, "vmcore-gdbserver: %s\n", err->message);
		goto out;
	}
	struct target target;
	target_init(&target, kernel, vmlinux, tasks);
	target.debug = so.debug;
	rc = server_run(&target, &so);
	target_free(&target);
out:
	vm_error_destroy(err);
	if (kernel)
		kernel_close(kernel);
	if (dump)
		dump_close(dump);
	free(vmlinux);
	return rc;
}

int main(int argc, char **argv)
{
	ignore_sigpipe();
	return serve(argc, argv);
}
