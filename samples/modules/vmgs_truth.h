/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Ground truth output shared by the scenario modules.
 *
 * Every truth line goes to the console as
 *   VMGS-TRUTH {"key": value, ...}      keys merged into the run's truth
 *   VMGS-TRUTH+ {"key": value}          value appended to the list truth[key]
 * and the host collects them into manifest.json (samples/factory.py).
 */
#ifndef VMGS_TRUTH_H
#define VMGS_TRUTH_H

#include <linux/printk.h>
#include <linux/types.h>

#define VMGS_TRUTH(fmt, ...) pr_emerg("VMGS-TRUTH {" fmt "}\n", ##__VA_ARGS__)
#define VMGS_TRUTH_ITEM(key, fmt, ...) \
	pr_emerg("VMGS-TRUTH+ {\"" key "\": {" fmt "}}\n", ##__VA_ARGS__)

/*
 * Copies src into dst as the inside of a JSON string: quotes, backslashes
 * and control bytes are escaped, the result is cut (never mid-escape) to fit.
 */
static inline const char *vmgs_json_str(char *dst, size_t size, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t out = 0;

	for (; *src && out + 7 < size; src++) {
		unsigned char c = *src;

		if (c == '"' || c == '\\') {
			dst[out++] = '\\';
			dst[out++] = c;
		} else if (c < 0x20 || c >= 0x7f) {
			dst[out++] = '\\';
			dst[out++] = 'u';
			dst[out++] = '0';
			dst[out++] = '0';
			dst[out++] = hex[c >> 4];
			dst[out++] = hex[c & 15];
		} else {
			dst[out++] = c;
		}
	}
	dst[out] = '\0';
	return dst;
}

#endif
