/* vmcore-gdbserver: serve a Linux crash dump to gdb over the remote serial protocol. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../memmodel/convert.h"
#include "../memmodel/dump.h"
#include "../memmodel/kernel.h"
#include "../memmodel/sysinfo.h"
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
	"  --tasks=MODE        all (default), active (on a CPU, runnable or in D state), none (CPUs only)\n"
	"  --zero-excluded     read pages the dump left out as zeros instead of failing\n"
	"  --vmlinux PATH      vmlinux with debug info (default: found from the dump's BUILD-ID)\n"
	"  --max-clients N     simultaneous TCP clients (default 16)\n"
	"  --debug             log packets and errors on stderr\n"
	"  --help, --version\n"
	"\n"
	"       vmcore-gdbserver info [--json] [--vmlinux PATH] DUMP [DUMP...]\n"
	"  what the dump holds: release, CPUs, tasks, panic, memory layout (like crash's `sys`)\n"
	"\n"
	"       vmcore-gdbserver convert --compress=zstd|snappy|lzo|zlib|none [--dump-level N] IN [IN...] OUT\n"
	"  rewrite a dump as kdump-compressed (readable by crash, libkdumpfile, makedumpfile)\n"
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

/* Open the dump and its kernel; vmlinux is found from the dump unless given. */
static struct vm_error *open_kernel(char **paths, size_t npaths, const char *vmlinux_arg,
				    struct dump **dump, struct kernel **kernel, char **vmlinux)
{
	*vmlinux = vmlinux_arg ? strdup(vmlinux_arg) : NULL;
	struct vm_error *err = dump_open((const char *const *)paths, npaths, NULL, dump);
	if (err)
		return err;
	if (!*vmlinux) {
		char *cache = cache_dir();
		err = locate_vmlinux(*dump, cache, vmlinux);
		free(cache);
		if (err) {
			/* Still useful without it: CPU threads, registers and memory. */
			fprintf(stderr, "vmcore-gdbserver: warning: %s\n", err->message);
			vm_error_destroy(err);
		}
	}
	return kernel_open(*dump, *vmlinux, kernel);
}

static void close_kernel(struct dump *dump, struct kernel *kernel, char *vmlinux)
{
	if (kernel)
		kernel_close(kernel);
	if (dump)
		dump_close(dump);
	free(vmlinux);
}

static const char info_usage[] =
	"usage: vmcore-gdbserver info [--json] [--vmlinux PATH] DUMP [DUMP...]\n"
	"What the dump holds, like crash's sys: release, CPUs, memory, panic, KASLR, format.\n";

static int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "vmlinux", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool json = false;
	const char *vmlinux_arg = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 'v') {
			vmlinux_arg = optarg;
		} else if (c == 'h') {
			fputs(info_usage, stdout);
			return 0;
		} else {
			fputs(info_usage, stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fputs(info_usage, stderr);
		return 2;
	}
	struct dump *dump = NULL;
	struct kernel *kernel = NULL;
	char *vmlinux = NULL;
	struct vm_error *err = open_kernel(argv + optind, (size_t)(argc - optind), vmlinux_arg, &dump,
					   &kernel, &vmlinux);
	if (!err)
		err = kernel_sysinfo_write(kernel, stdout, json);
	int rc = 0;
	if (err) {
		fprintf(stderr, "vmcore-gdbserver: %s\n", err->message);
		vm_error_destroy(err);
		rc = 1;
	}
	close_kernel(dump, kernel, vmlinux);
	return rc;
}

static void convert_progress(void *arg, uint64_t done, uint64_t total)
{
	*(bool *)arg = true;
	fprintf(stderr, "\rvmcore-gdbserver: converted %llu of %llu pages", (unsigned long long)done,
		(unsigned long long)total);
}

static const char convert_usage[] =
	"usage: vmcore-gdbserver convert --compress=zstd|snappy|lzo|zlib|none [--dump-level N] IN [IN...] OUT\n"
	"Write any readable dump (several INs: one split set) as kdump-compressed; --dump-level 0 or 1.\n";

static int cmd_convert(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "compress", required_argument, NULL, 'c' },
		{ "dump-level", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool progress_shown = false;
	struct convert_options co = { .compression = CONVERT_ZLIB, .progress = convert_progress,
				      .progress_arg = &progress_shown };
	struct vm_error *err = NULL;
	int c;
	bool compress_given = false;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c') {
			err = convert_compression_parse(optarg, &co.compression);
			compress_given = true;
		} else if (c == 'd') {
			char *end;
			co.dump_level = (int)strtol(optarg, &end, 0);
			if (*end || end == optarg)
				err = vm_error_create(VM_ERR_INVALID, 0, "--dump-level '%s' is not a number", optarg);
		} else if (c == 'h') {
			fputs(convert_usage, stdout);
			return 0;
		} else {
			fputs(convert_usage, stderr);
			return 2;
		}
		if (err) {
			fprintf(stderr, "vmcore-gdbserver: %s\n", err->message);
			vm_error_destroy(err);
			return 2;
		}
	}
	if (!compress_given || argc - optind < 2) {
		fputs(convert_usage, stderr);
		return 2;
	}
	struct dump *dump = NULL;
	err = dump_open((const char *const *)argv + optind, (size_t)(argc - optind - 1), NULL, &dump);
	if (!err)
		err = dump_convert(dump, &co, argv[argc - 1]);
	int rc = 0;
	if (progress_shown)
		fputc('\n', stderr);
	if (err) {
		fprintf(stderr, "vmcore-gdbserver: %s\n", err->message);
		vm_error_destroy(err);
		rc = 1;
	}
	if (dump)
		dump_close(dump);
	return rc;
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
	char *vmlinux = NULL;
	int rc = 1;
	struct vm_error *err = open_kernel(argv + optind, (size_t)(argc - optind), vmlinux_arg, &dump,
					   &kernel, &vmlinux);
	if (err) {
		fprintf(stderr, "vmcore-gdbserver: %s\n", err->message);
		vm_error_destroy(err);
	} else {
		struct target target;
		target_init(&target, kernel, vmlinux, tasks);
		target.debug = so.debug;
		rc = server_run(&target, &so);
		target_free(&target);
	}
	close_kernel(dump, kernel, vmlinux);
	return rc;
}

int main(int argc, char **argv)
{
	ignore_sigpipe();
	if (argc > 1 && strcmp(argv[1], "info") == 0)
		return cmd_info(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "convert") == 0)
		return cmd_convert(argc - 1, argv + 1);
	return serve(argc, argv);
}
