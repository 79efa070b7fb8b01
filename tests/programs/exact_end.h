/*
 * exact_end(): print the process's own fault count (ru_minflt + ru_majflt) as
 * "rusage_faults=<n>" and exit, with no page fault after the count is taken.
 *
 * After getrusage() only code and memory that have already been used run:
 * the whole sequence runs once first with output to fd -1 (EBADF), which
 * faults in getrusage()'s code, the stack and the line buffer; the digits are
 * formatted by hand and written and the process ended with raw system calls
 * (x86-64), so no library code runs for the first time. The kernel's exit
 * path touches only memory the process has used (its thread's TCB). So a
 * tracer of completed faults must record exactly this many after arming.
 */
#ifndef EXACT_END_H
#define EXACT_END_H

#include <sys/resource.h>
#include <sys/syscall.h>

static char exact_line[64];

static inline long exact_syscall3(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}

static __attribute__((noinline)) void exact_say(int fd)
{
	static const char prefix[] = "rusage_faults=";
	struct rusage ru;
	char digits[24];
	long n;
	int len = 0, k = 0;

	getrusage(RUSAGE_SELF, &ru);
	n = ru.ru_minflt + ru.ru_majflt;
	while (prefix[len]) {
		exact_line[len] = prefix[len];
		len++;
	}
	do {
		digits[k++] = (char)('0' + n % 10);
		n /= 10;
	} while (n && k < (int)sizeof(digits));
	while (k)
		exact_line[len++] = digits[--k];
	exact_line[len++] = '\n';
	exact_syscall3(SYS_write, fd, (long)exact_line, len);
}

static __attribute__((noreturn)) void exact_end(void)
{
	exact_say(-1);
	exact_say(1);
	for (;;)
		exact_syscall3(SYS_exit_group, 0, 0, 0);
}

#endif
