#include "tdesc.h"

#include <string.h>

#define GPR(n, r) { n, 64, r }
#define SEG(n, r) { n, 32, r }
#define X87(n) { n, 80, -1 }
#define FPC(n) { n, 32, -1 }
#define XMM(n) { n, 128, -1 }
#define SYS(n, r) { n, 64, r }

/* Core names and order are what gdb's i386_validate_tdesc_p checks for amd64. */
static const struct tdesc_reg regs[] = {
	GPR("rax", REG_RAX), GPR("rbx", REG_RBX), GPR("rcx", REG_RCX), GPR("rdx", REG_RDX),
	GPR("rsi", REG_RSI), GPR("rdi", REG_RDI),
	GPR("rbp", REG_RBP), GPR("rsp", REG_RSP),
	GPR("r8", REG_R8), GPR("r9", REG_R9), GPR("r10", REG_R10), GPR("r11", REG_R11),
	GPR("r12", REG_R12), GPR("r13", REG_R13), GPR("r14", REG_R14), GPR("r15", REG_R15),
	GPR("rip", REG_RIP),
	SEG("eflags", REG_EFLAGS),
	SEG("cs", REG_CS), SEG("ss", REG_SS), SEG("ds", REG_DS), SEG("es", REG_ES),
	SEG("fs", REG_FS), SEG("gs", REG_GS),
	X87("st0"), X87("st1"), X87("st2"), X87("st3"), X87("st4"), X87("st5"), X87("st6"), X87("st7"),
	FPC("fctrl"), FPC("fstat"), FPC("ftag"), FPC("fiseg"), FPC("fioff"), FPC("foseg"),
	FPC("fooff"), FPC("fop"),
	XMM("xmm0"), XMM("xmm1"), XMM("xmm2"), XMM("xmm3"), XMM("xmm4"), XMM("xmm5"), XMM("xmm6"),
	XMM("xmm7"), XMM("xmm8"), XMM("xmm9"), XMM("xmm10"), XMM("xmm11"), XMM("xmm12"),
	XMM("xmm13"), XMM("xmm14"), XMM("xmm15"),
	FPC("mxcsr"),
	SYS("fs_base", REG_FS_BASE),
	SYS("gs_base", REG_GS_BASE),
	SYS("k_gs_base", REG_K_GS_BASE),
	SYS("cr0", REG_CR0),
	SYS("cr2", REG_CR2),
	SYS("cr3", REG_CR3),
	SYS("cr4", REG_CR4),
	SYS("cr8", REG_CR8),
	SYS("efer", REG_EFER),
};

size_t tdesc_regs(const struct tdesc_reg **out)
{
	*out = regs;
	return sizeof(regs) / sizeof(regs[0]);
}

/*
 * Written out by hand so it is a constant; tests/unit/test_rsp_tdesc.c checks that the
 * <reg> elements match the table above in name, size and order.
 */
static const char target_xml[] =
	"<?xml version=\"1.0\"?>\n"
	"<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
	"<target version=\"1.0\">\n"
	"<architecture>i386:x86-64</architecture>\n"
	"<feature name=\"org.gnu.gdb.i386.core\">\n"
	"<flags id=\"x86_eflags\" size=\"4\">"
	"<field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"\" start=\"1\" end=\"1\"/>"
	"<field name=\"PF\" start=\"2\" end=\"2\"/><field name=\"AF\" start=\"4\" end=\"4\"/>"
	"<field name=\"ZF\" start=\"6\" end=\"6\"/><field name=\"SF\" start=\"7\" end=\"7\"/>"
	"<field name=\"TF\" start=\"8\" end=\"8\"/><field name=\"IF\" start=\"9\" end=\"9\"/>"
	"<field name=\"DF\" start=\"10\" end=\"10\"/><field name=\"OF\" start=\"11\" end=\"11\"/>"
	"<field name=\"NT\" start=\"14\" end=\"14\"/><field name=\"RF\" start=\"16\" end=\"16\"/>"
	"<field name=\"VM\" start=\"17\" end=\"17\"/><field name=\"AC\" start=\"18\" end=\"18\"/>"
	"<field name=\"VIF\" start=\"19\" end=\"19\"/><field name=\"VIP\" start=\"20\" end=\"20\"/>"
	"<field name=\"ID\" start=\"21\" end=\"21\"/></flags>\n"
	"<reg name=\"rax\" bitsize=\"64\" type=\"int64\" regnum=\"0\"/>\n"
	"<reg name=\"rbx\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"rcx\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"rdx\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"rsi\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"rdi\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"rbp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
	"<reg name=\"rsp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
	"<reg name=\"r8\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r9\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r10\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r11\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r12\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r13\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r14\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"r15\" bitsize=\"64\" type=\"int64\"/>\n"
	"<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/>\n"
	"<reg name=\"eflags\" bitsize=\"32\" type=\"x86_eflags\"/>\n"
	"<reg name=\"cs\" bitsize=\"32\" type=\"int32\"/>\n"
	"<reg name=\"ss\" bitsize=\"32\" type=\"int32\"/>\n"
	"<reg name=\"ds\" bitsize=\"32\" type=\"int32\"/>\n"
	"<reg name=\"es\" bitsize=\"32\" type=\"int32\"/>\n"
	"<reg name=\"fs\" bitsize=\"32\" type=\"int32\"/>\n"
	"<reg name=\"gs\" bitsize=\"32\" type=\"int32\"/>\n"
	"<reg name=\"st0\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st1\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st2\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st3\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st4\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st5\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st6\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"st7\" bitsize=\"80\" type=\"i387_ext\"/>\n"
	"<reg name=\"fctrl\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"fstat\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"ftag\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"fiseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"fioff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"foseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"fooff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"<reg name=\"fop\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
	"</feature>\n"
	"<feature name=\"org.gnu.gdb.i386.sse\">\n"
	"<vector id=\"v8bf16\" type=\"bfloat16\" count=\"8\"/>"
	"<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>"
	"<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>"
	"<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>"
	"<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>"
	"<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>"
	"<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>\n"
	"<union id=\"vec128\"><field name=\"v8_bfloat16\" type=\"v8bf16\"/>"
	"<field name=\"v4_float\" type=\"v4f\"/><field name=\"v2_double\" type=\"v2d\"/>"
	"<field name=\"v16_int8\" type=\"v16i8\"/><field name=\"v8_int16\" type=\"v8i16\"/>"
	"<field name=\"v4_int32\" type=\"v4i32\"/><field name=\"v2_int64\" type=\"v2i64\"/>"
	"<field name=\"uint128\" type=\"uint128\"/></union>\n"
	"<flags id=\"x86_mxcsr\" size=\"4\">"
	"<field name=\"IE\" start=\"0\" end=\"0\"/><field name=\"DE\" start=\"1\" end=\"1\"/>"
	"<field name=\"ZE\" start=\"2\" end=\"2\"/><field name=\"OE\" start=\"3\" end=\"3\"/>"
	"<field name=\"UE\" start=\"4\" end=\"4\"/><field name=\"PE\" start=\"5\" end=\"5\"/>"
	"<field name=\"DAZ\" start=\"6\" end=\"6\"/><field name=\"IM\" start=\"7\" end=\"7\"/>"
	"<field name=\"DM\" start=\"8\" end=\"8\"/><field name=\"ZM\" start=\"9\" end=\"9\"/>"
	"<field name=\"OM\" start=\"10\" end=\"10\"/><field name=\"UM\" start=\"11\" end=\"11\"/>"
	"<field name=\"PM\" start=\"12\" end=\"12\"/><field name=\"FZ\" start=\"15\" end=\"15\"/>"
	"</flags>\n"
	"<reg name=\"xmm0\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm1\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm2\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm3\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm4\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm5\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm6\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm7\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm8\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm9\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm10\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm11\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm12\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm13\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm14\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"xmm15\" bitsize=\"128\" type=\"vec128\"/>\n"
	"<reg name=\"mxcsr\" bitsize=\"32\" type=\"x86_mxcsr\" group=\"vector\"/>\n"
	"</feature>\n"
	"<feature name=\"org.gnu.gdb.i386.segments\">\n"
	"<reg name=\"fs_base\" bitsize=\"64\" type=\"int\"/>\n"
	"<reg name=\"gs_base\" bitsize=\"64\" type=\"int\"/>\n"
	"</feature>\n"
	"<feature name=\"org.vmcore-gdbserver.x86.sys\">\n"
	"<flags id=\"x86_cr0\" size=\"8\">"
	"<field name=\"PE\" start=\"0\" end=\"0\"/><field name=\"MP\" start=\"1\" end=\"1\"/>"
	"<field name=\"EM\" start=\"2\" end=\"2\"/><field name=\"TS\" start=\"3\" end=\"3\"/>"
	"<field name=\"ET\" start=\"4\" end=\"4\"/><field name=\"NE\" start=\"5\" end=\"5\"/>"
	"<field name=\"WP\" start=\"16\" end=\"16\"/><field name=\"AM\" start=\"18\" end=\"18\"/>"
	"<field name=\"NW\" start=\"29\" end=\"29\"/><field name=\"CD\" start=\"30\" end=\"30\"/>"
	"<field name=\"PG\" start=\"31\" end=\"31\"/></flags>\n"
	"<flags id=\"x86_cr4\" size=\"8\">"
	"<field name=\"VME\" start=\"0\" end=\"0\"/><field name=\"PVI\" start=\"1\" end=\"1\"/>"
	"<field name=\"TSD\" start=\"2\" end=\"2\"/><field name=\"DE\" start=\"3\" end=\"3\"/>"
	"<field name=\"PSE\" start=\"4\" end=\"4\"/><field name=\"PAE\" start=\"5\" end=\"5\"/>"
	"<field name=\"MCE\" start=\"6\" end=\"6\"/><field name=\"PGE\" start=\"7\" end=\"7\"/>"
	"<field name=\"PCE\" start=\"8\" end=\"8\"/><field name=\"OSFXSR\" start=\"9\" end=\"9\"/>"
	"<field name=\"OSXMMEXCPT\" start=\"10\" end=\"10\"/><field name=\"UMIP\" start=\"11\" end=\"11\"/>"
	"<field name=\"LA57\" start=\"12\" end=\"12\"/><field name=\"VMXE\" start=\"13\" end=\"13\"/>"
	"<field name=\"SMXE\" start=\"14\" end=\"14\"/><field name=\"FSGSBASE\" start=\"16\" end=\"16\"/>"
	"<field name=\"PCIDE\" start=\"17\" end=\"17\"/><field name=\"OSXSAVE\" start=\"18\" end=\"18\"/>"
	"<field name=\"SMEP\" start=\"20\" end=\"20\"/><field name=\"SMAP\" start=\"21\" end=\"21\"/>"
	"<field name=\"PKE\" start=\"22\" end=\"22\"/></flags>\n"
	"<flags id=\"x86_efer\" size=\"8\">"
	"<field name=\"SCE\" start=\"0\" end=\"0\"/><field name=\"LME\" start=\"8\" end=\"8\"/>"
	"<field name=\"LMA\" start=\"10\" end=\"10\"/><field name=\"NXE\" start=\"11\" end=\"11\"/>"
	"<field name=\"SVME\" start=\"12\" end=\"12\"/><field name=\"LMSLE\" start=\"13\" end=\"13\"/>"
	"<field name=\"FFXSR\" start=\"14\" end=\"14\"/></flags>\n"
	"<reg name=\"k_gs_base\" bitsize=\"64\" type=\"int\" group=\"system\"/>\n"
	"<reg name=\"cr0\" bitsize=\"64\" type=\"x86_cr0\" group=\"system\"/>\n"
	"<reg name=\"cr2\" bitsize=\"64\" type=\"int\" group=\"system\"/>\n"
	"<reg name=\"cr3\" bitsize=\"64\" type=\"int\" group=\"system\"/>\n"
	"<reg name=\"cr4\" bitsize=\"64\" type=\"x86_cr4\" group=\"system\"/>\n"
	"<reg name=\"cr8\" bitsize=\"64\" type=\"int\" group=\"system\"/>\n"
	"<reg name=\"efer\" bitsize=\"64\" type=\"x86_efer\" group=\"system\"/>\n"
	"</feature>\n"
	"</target>\n";

const char *tdesc_xml(void)
{
	return target_xml;
}

static void encode_reg(const struct tdesc_reg *d, const struct x86_regs *r, struct rsp_buf *out)
{
	unsigned nbytes = d->bits / 8;
	if (d->source < 0 || !r || !regs_has(r, (enum x86_reg)d->source)) {
		for (unsigned i = 0; i < nbytes; i++)
			rsp_buf_adds(out, "xx");
		return;
	}
	/* Target byte order is little-endian; registers are at most 64 bits when known. */
	uint8_t bytes[8];
	uint64_t v = r->v[d->source];
	for (unsigned i = 0; i < 8; i++)
		bytes[i] = (uint8_t)(v >> (8 * i));
	rsp_buf_addhex(out, bytes, nbytes < 8 ? nbytes : 8);
}

void tdesc_encode_g(const struct x86_regs *r, struct rsp_buf *out)
{
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		encode_reg(&regs[i], r, out);
}

bool tdesc_encode_p(const struct x86_regs *r, unsigned long regno, struct rsp_buf *out)
{
	if (regno >= sizeof(regs) / sizeof(regs[0]))
		return false;
	encode_reg(&regs[regno], r, out);
	return true;
}
