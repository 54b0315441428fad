#include "lldb.h"

#include <string.h>

/* Append "key:<hex of text>;", the encoding LLDB expects for string-valued keys. */
static void add_hex_key(struct rsp_buf *reply, const char *key, const char *text)
{
	rsp_buf_printf(reply, "%s:", key);
	rsp_buf_addhex(reply, text, strlen(text));
	rsp_buf_addc(reply, ';');
}

static void add_arch_keys(struct rsp_buf *reply)
{
	add_hex_key(reply, "triple", LLDB_TRIPLE);
	rsp_buf_adds(reply, "ostype:linux;vendor:unknown;endian:little;ptrsize:8;");
}

void lldb_host_info(struct target *t, struct rsp_buf *reply)
{
	add_arch_keys(reply);
	if (!t->kernel)
		return;
	/* Names of the dumped machine, so `platform status` says what was dumped. */
	const struct kernel_info *info = kernel_info(t->kernel);
	if (info->nodename[0])
		add_hex_key(reply, "hostname", info->nodename);
	if (info->release[0])
		add_hex_key(reply, "os_build", info->release);
	if (info->version[0])
		add_hex_key(reply, "os_kernel", info->version);
}

void lldb_process_info(struct rsp_buf *reply)
{
	rsp_buf_adds(reply, "pid:1;");
	add_arch_keys(reply);
}
