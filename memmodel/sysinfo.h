/* The `info` / `monitor sys` report: what crash's `sys` shows, as text or JSON. */
#ifndef MEMMODEL_SYSINFO_H
#define MEMMODEL_SYSINFO_H

#include <stdbool.h>
#include <stdio.h>

#include "error.h"
#include "kernel.h"

/*
 * Write the report to out. Text is aligned "KEY: value" lines like crash's `sys`; JSON is one
 * object whose keys are documented in sysinfo.c. Task enumeration errors are reported inside the
 * output (the rest of the report is still useful); only write failures are returned.
 */
struct vm_error *kernel_sysinfo_write(struct kernel *k, FILE *out, bool json);

#endif
