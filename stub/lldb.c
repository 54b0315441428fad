#include "lldb.h"

#include <string.h>

/* Append "key:<hex of text>;", the encoding LLDB expects for string-valued keys. */
static void add_hex_key(struct rsp_buf *reply, const char *key, const char *text)
{
	rsp_buf_printf(reply, "%s:", key);
	rsp_buf_addhex(reply, text, strlen(text));
	rsp_buf_addc(reply, ';');
}

void lldb_host_info(struct target *t, struct session *s, const char *args, struct rsp_buf *out)
{
	(void)s;
	(void)args;
	struct rsp_buf reply;
	rsp_buf_init(&reply);
	add_hex_key(&reply, "triple", LLDB_TRIPLE);
	rsp_buf_adds(&reply, "ostype:linux;vendor:unknown;endian:little;ptrsize:8;");
	if (t->kernel) {
		const struct kernel_info *info = kernel_info(t->kernel);
		/* Names of the dumped machine, so `platform status` shows what was dumped. */
		if (info->nodename[0])
			add_hex_key(&reply, "hostname", info->nodename);
		if (info->release[0])
			add_hex_key(&reply, "os_build", info->release);
		if (info->version[0])
			add_hex_key(&reply, "os_kernel", info->version);
	}
	if (reply.failed)
		rsp_put_packet(out, "E01", 3);
	else
		rsp_put_packet(out, reply.data, reply.len);
	rsp_buf_free(&reply);
}

void lldb_process_info(struct target *t, struct session *s, const char *args, struct rsp_buf *out)
{
	(void)t;
	(void)s;
	(void)args;
	struct rsp_buf reply;
	rsp_buf_init(&reply);
	rsp_buf_adds(&reply, "pid:1;");
	add_hex_key(&reply, "triple", LLDB_TRIPLE);
	rsp_buf_adds(&reply, "ostype:linux;vendor:unknown;endian:little;ptrsize:8;");
	if (reply.failed)
		rsp_put_packet(out, "E01", 3);
	else
		rsp_put_packet(out, reply.data, reply.len);
	rsp_buf_free(&reply);
}
