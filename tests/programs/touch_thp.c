/*
 * touch_thp: write one byte to each 4 KiB page of an N MiB anonymous region
 * aligned to 2 MiB, then print the process's own fault count.
 *
 *   touch_thp N
 *
 * Unlike touch_pages, transparent huge pages are left as the machine's setting
 * has them: with THP "always" each 2 MiB of the region faults once (a huge
 * page), with "never" (or "madvise", since nothing here asks for huge pages)
 * each 4 KiB page faults once. Prints
 *   region=0x<start>-0x<end> pages=<N * 256>
 *   rusage_faults=<minflt + majflt>
 * and nothing faults after that count is taken (exact_end.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "exact_end.h"

#define PAGE 4096UL
#define HUGE (2UL << 20)

int main(int argc, char **argv)
{
	unsigned long mib, size, i;
	char *map, *region;

	if (argc != 2) {
		fprintf(stderr, "usage: touch_thp N (MiB, 1-1024)\n");
		return 2;
	}
	mib = strtoul(argv[1], NULL, 0);
	if (mib < 1 || mib > 1024) {
		fprintf(stderr, "touch_thp: N must be 1-1024 MiB\n");
		return 2;
	}
	size = mib << 20;
	map = mmap(NULL, size + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	region = (char *)(((unsigned long)map + HUGE - 1) & ~(HUGE - 1));
	for (i = 0; i < size; i += PAGE)
		region[i] = 1;
	printf("region=%p-%p pages=%lu\n", (void *)region, (void *)(region + size), size / PAGE);
	fflush(stdout);
	exact_end();
}
