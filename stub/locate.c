#include "locate.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rsp.h"

/* Value of KEY=... in VMCOREINFO text into buf ("" if absent). */
static void vmcoreinfo_value(const char *info, const char *key, char *buf, size_t buflen)
{
	size_t klen = strlen(key);
	buf[0] = '\0';
	for (const char *p = info; p && *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t n = len - klen - 1;
			if (n >= buflen)
				n = buflen - 1;
			memcpy(buf, p + klen + 1, n);
			buf[n] = '\0';
			return;
		}
		p = eol ? eol + 1 : NULL;
	}
}

struct vm_error *locate_elf_build_id(const char *path, char *buf, size_t buflen)
{
	struct vm_error *err = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vm_error_errno(0, "%s", path);
	elf_version(EV_CURRENT);
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf) {
		close(fd);
		return vm_error_create(VM_ERR_FORMAT, 0, "%s: not an ELF file: %s", path, elf_errmsg(-1));
	}
	buf[0] = '\0';
	Elf_Scn *scn = NULL;
	while (!buf[0] && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		Elf_Data *data = elf_getdata(scn, NULL);
		GElf_Nhdr nh;
		size_t off = 0, name_off, desc_off;
		while (data && (off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    memcmp((char *)data->d_buf + name_off, "GNU", 4) == 0 &&
			    nh.n_descsz * 2 < buflen) {
				struct rsp_buf hex;
				rsp_buf_init(&hex);
				rsp_buf_addhex(&hex, (char *)data->d_buf + desc_off, nh.n_descsz);
				if (!hex.failed)
					memcpy(buf, hex.data, hex.len + 1);
				rsp_buf_free(&hex);
				break;
			}
		}
	}
	if (!buf[0])
		err = vm_error_create(VM_ERR_NOT_FOUND, 0, "%s has no GNU build-id note", path);
	elf_end(elf);
	close(fd);
	return err;
}

/* The top-level "vmlinux" string of a samples manifest.json, malloc'd, or NULL. */
static char *manifest_vmlinux(const char *manifest)
{
	FILE *f = fopen(manifest, "r");
	if (!f)
		return NULL;
	char *text = NULL;
	size_t cap = 0;
	ssize_t n = getdelim(&text, &cap, '\0', f);
	fclose(f);
	char *result = NULL;
	const char *key = n > 0 ? strstr(text, "\"vmlinux\"") : NULL;
	if (key) {
		const char *p = key + strlen("\"vmlinux\"");
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':')
			p++;
		const char *end = *p == '"' ? strchr(p + 1, '"') : NULL;
		if (end)
			result = strndup(p + 1, (size_t)(end - p - 1));
	}
	free(text);
	return result;
}

struct search {
	const char *build_id;  /* "" if the dump has none */
	struct rsp_buf report; /* one line per place looked at */
	char *found;
};

static void try_candidate(struct search *s, const char *path)
{
	struct stat st;
	if (s->found || !path)
		return;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		rsp_buf_printf(&s->report, "  %s: does not exist\n", path);
		return;
	}
	if (s->build_id[0]) {
		char id[129];
		struct vm_error *err = locate_elf_build_id(path, id, sizeof(id));
		if (err) {
			rsp_buf_printf(&s->report, "  %s: %s\n", path, err->message);
			vm_error_destroy(err);
			return;
		}
		if (strcmp(id, s->build_id) != 0) {
			rsp_buf_printf(&s->report, "  %s: build-id %s does not match\n", path, id);
			return;
		}
	}
	s->found = strdup(path);
}

struct vm_error *locate_vmlinux(const struct dump *d, const char *cache_dir, char **path)
{
	const char *info = dump_vmcoreinfo(d);
	char release[128], build_id[129], buf[4096];
	vmcoreinfo_value(info, "OSRELEASE", release, sizeof(release));
	vmcoreinfo_value(info, "BUILD-ID", build_id, sizeof(build_id));
	if (!release[0])
		snprintf(release, sizeof(release), "%s", dump_describe(d)->utsname_release);
	*path = NULL;

	struct search s = { .build_id = build_id };
	rsp_buf_init(&s.report);
	if (build_id[0] && strlen(build_id) > 2) {
		snprintf(buf, sizeof(buf), "/usr/lib/debug/.build-id/%.2s/%s.debug", build_id, build_id + 2);
		try_candidate(&s, buf);
	}
	if (release[0]) {
		static const char *const patterns[] = {
			"/usr/lib/debug/boot/vmlinux-%s",
			"/usr/lib/debug/lib/modules/%s/vmlinux",
			"/boot/vmlinux-%s",
			"/lib/modules/%s/build/vmlinux",
		};
		for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
			snprintf(buf, sizeof(buf), patterns[i], release);
			try_candidate(&s, buf);
		}
		if (cache_dir) {
			snprintf(buf, sizeof(buf), "%s/samples/%s/manifest.json", cache_dir, release);
			char *from_manifest = manifest_vmlinux(buf);
			if (from_manifest)
				try_candidate(&s, from_manifest);
			else if (!s.found)
				rsp_buf_printf(&s.report, "  %s: missing, or no \"vmlinux\" in it\n", buf);
			free(from_manifest);
			snprintf(buf, sizeof(buf), "%s/samples/%s/vmlinux", cache_dir, release);
			try_candidate(&s, buf);
			snprintf(buf, sizeof(buf), "%s/samples/%s/usr/lib/debug/boot/vmlinux-%s", cache_dir,
				 release, release);
			try_candidate(&s, buf);
		}
	}
	struct vm_error *err = NULL;
	if (s.found) {
		*path = s.found;
	} else {
		err = vm_error_create(VM_ERR_NOT_FOUND, 0,
				      "no vmlinux matches the dump (OSRELEASE %s, BUILD-ID %s); looked at:\n%s"
				      "give one with --vmlinux PATH (Debian: linux-image-%s-dbg)",
				      release[0] ? release : "unknown", build_id[0] ? build_id : "unknown",
				      s.report.data ? s.report.data : "  nothing (no OSRELEASE in the dump)\n",
				      release[0] ? release : "<release>");
	}
	rsp_buf_free(&s.report);
	return err;
}
