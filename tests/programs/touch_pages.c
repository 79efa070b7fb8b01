/*
 * touch_pages: fault in N fresh anonymous pages, in order, once each.
 *
 *   touch_pages N [THREADS]
 *
 * Transparent huge pages are off for the whole process (PR_SET_THP_DISABLE;
 * a huge page would map 512 pages with one fault): MADV_NOHUGEPAGE on the
 * region alone is not enough with threads, because a new region can merge
 * for a moment with a neighbouring thread stack, whose fault may then map a
 * huge page that reaches into the region. A kernel without THP (Debian's
 * PREEMPT_RT 6.1: THP depends on !PREEMPT_RT there) refuses MADV_NOHUGEPAGE
 * with EINVAL: nothing to turn off. Each page is written once. With THREADS > 1,
 * each thread touches its own N pages. Prints the region(s) and the
 * process's own count of faults (ru_minflt + ru_majflt) at the very end:
 *   region=0x<start>-0x<end> pages=<N> tid=<the thread that touched it>
 *   rusage_faults=<minflt + majflt>
 * Nothing faults after that count is taken (see say_faults()), so it is the
 * process's whole count: a tracer must record exactly as many faults.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exact_end.h"

#define PAGE 4096UL

static unsigned long pages;

static void *touch(void *unused)
{
	char *region = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long i;

	(void)unused;
	if (region == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	if (madvise(region, pages * PAGE, MADV_NOHUGEPAGE) != 0 && errno != EINVAL) {
		perror("madvise");
		exit(1);
	}
	for (i = 0; i < pages; i++)
		region[i * PAGE] = 1;
	printf("region=%p-%p pages=%lu tid=%ld\n", (void *)region, (void *)(region + pages * PAGE), pages,
	       (long)syscall(SYS_gettid));
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long threads = argc > 2 ? strtoul(argv[2], NULL, 0) : 1;
	pthread_t tids[64];
	unsigned long t;

	if (argc < 2 || threads < 1 || threads > 64) {
		fprintf(stderr, "usage: touch_pages N [THREADS (1-64)]\n");
		return 2;
	}
	pages = strtoul(argv[1], NULL, 0);
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) {
		perror("prctl(PR_SET_THP_DISABLE)");
		return 1;
	}
	if (threads == 1) {
		touch(NULL);
	} else {
		for (t = 0; t < threads; t++)
			if (pthread_create(&tids[t], NULL, touch, NULL) != 0)
				return 1;
		for (t = 0; t < threads; t++)
			pthread_join(tids[t], NULL);
	}
	fflush(stdout);
	exact_end();
}
