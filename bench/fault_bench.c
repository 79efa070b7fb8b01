/*
 * fault_bench: the per-fault cost microbenchmark.
 *
 *   fault_bench PAGES [SETTLE_MS]
 *
 * Maps PAGES fresh anonymous pages (MADV_NOHUGEPAGE: one fault per page),
 * writes one byte to each, and prints the time the loop took per page:
 *   ns_per_fault=<float> pages=<n>
 * Only the loop is timed: start-up and the tracer's own set-up are outside it.
 * SETTLE_MS (default 0) sleeps that long before the loop, so that whatever a
 * tracer does shortly after it is armed (the kernel optimizes a new kprobe
 * from int3 into a jump after a few jiffies; bpftrace and perf start their
 * readers) is over before the loop starts: bench/run.py passes 200.
 * The tracer is armed before the program runs (pfharness holds it before exec;
 * perf and bpftrace start it themselves with -c / --).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

int main(int argc, char **argv)
{
	unsigned long pages = argc > 1 ? strtoul(argv[1], NULL, 0) : 20000;
	unsigned long settle_ms = argc > 2 ? strtoul(argv[2], NULL, 0) : 0;
	struct timespec a, b;
	char *region;
	unsigned long i;
	double ns;

	region = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED || madvise(region, pages * PAGE, MADV_NOHUGEPAGE) != 0) {
		perror("mmap/madvise");
		return 1;
	}
	if (settle_ms)
		usleep(settle_ms * 1000);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < pages; i++)
		region[i * PAGE] = 1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	printf("ns_per_fault=%.1f pages=%lu\n", ns / pages, pages);
	return 0;
}
