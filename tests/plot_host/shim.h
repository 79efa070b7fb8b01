/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel API the plot's core (kmod_templates/common/plot_core.c.j2) uses,
 * mapped to libc, so that tests/test_plot_equal.py can compile the core as a
 * host program and compare its lines with pfharness/results/folded.py's.
 *
 * Where libc and the kernel differ on what the core prints, this follows the
 * kernel:
 *  - "%#llx" of 0 is "0x0" in the kernel (lib/vsprintf.c, number(): the "0x"
 *    prefix is written for base 16 even when the number is zero), "0" in
 *    libc: every format is passed through kfmt(), which writes "0x%llx".
 *  - scnprintf() returns the characters written, not the ones it would have
 *    written (include/linux/kernel.h, lib/vsprintf.c).
 *  - mul_u64_u64_div_u64() is exact (x86-64: one mulq and one divq,
 *    arch/x86/include/asm/div64.h): here the 128-bit product of gcc.
 * pr_info() and pr_err() print to stdout without the "pf_probe_X: " prefix
 * (the Python side compares lines with the prefix stripped); pr_debug() is
 * off, as in a module without DEBUG or dynamic debug switched on.
 */
#ifndef PLOT_HOST_SHIM_H
#define PLOT_HOST_SHIM_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef unsigned long long u64;	/* as on x86-64: "%llu" takes it */

#define U64_MAX ((u64)~0ULL)
#define PAGE_SHIFT 12
#define NSEC_PER_USEC 1000L
#define NSEC_PER_MSEC 1000000L
#define NSEC_PER_SEC 1000000000L

#define min(a, b) ({ __typeof__(a) _a = (a); __typeof__(b) _b = (b); _a < _b ? _a : _b; })
#define max(a, b) ({ __typeof__(a) _a = (a); __typeof__(b) _b = (b); _a > _b ? _a : _b; })
#define min_t(type, a, b) min((type)(a), (type)(b))

static inline u64 mul_u64_u64_div_u64(u64 a, u64 b, u64 c)
{
	return (u64)((unsigned __int128)a * b / c);
}

static inline u64 div_u64_rem(u64 dividend, u32 divisor, u32 *remainder)
{
	*remainder = (u32)(dividend % divisor);
	return dividend / divisor;
}

static inline u64 div_u64(u64 dividend, u32 divisor)
{
	return dividend / divisor;
}

static inline void cond_resched(void)
{
}

/* sort() - lib/sort.c's heapsort is not stable, nor is qsort: the core's orders are total. */
static inline void sort(void *base, size_t num, size_t size,
			int (*cmp)(const void *, const void *), void *swap)
{
	(void)swap;
	qsort(base, num, size, cmp);
}

/* kfmt() - @fmt with every "%#llx" written as the kernel prints it, "0x%llx". */
static inline const char *kfmt(const char *fmt, char *buf, size_t size)
{
	size_t n = 0;

	while (*fmt && n + 7 < size) {
		if (!strncmp(fmt, "%#llx", 5)) {
			memcpy(buf + n, "0x%llx", 6);
			n += 6;
			fmt += 5;
		} else {
			buf[n++] = *fmt++;
		}
	}
	if (*fmt) {
		fprintf(stderr, "shim: a format longer than %zu characters\n", size);
		exit(3);
	}
	buf[n] = '\0';
	return buf;
}

static inline __attribute__((format(printf, 3, 4)))
int scnprintf(char *buf, size_t size, const char *fmt, ...)
{
	char kernel_fmt[512];
	va_list args;
	int n;

	if (size == 0)
		return 0;
	va_start(args, fmt);
	n = vsnprintf(buf, size, kfmt(fmt, kernel_fmt, sizeof(kernel_fmt)), args);
	va_end(args);
	if (n < 0)
		return 0;
	return (size_t)n < size ? n : (int)(size - 1);
}

static inline __attribute__((format(printf, 1, 2)))
void host_printk(const char *fmt, ...)
{
	char kernel_fmt[512];
	va_list args;

	va_start(args, fmt);
	vprintf(kfmt(fmt, kernel_fmt, sizeof(kernel_fmt)), args);
	va_end(args);
}

#define pr_info(fmt, ...) host_printk(fmt, ##__VA_ARGS__)
#define pr_err(fmt, ...) host_printk("ERROR: " fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) do { if (0) printf(fmt, ##__VA_ARGS__); } while (0)

#endif /* PLOT_HOST_SHIM_H */
