/*
 * oracle_touch: pfharness check's default workload: a known fault pattern,
 * quick and deterministic. Each of THREADS threads (the main one first) maps
 * PAGES fresh anonymous pages and writes each once, in order; transparent
 * huge pages are off for the process. Prints each region it touched:
 *   region=0x<start>-0x<end> pages=<N>
 *
 *   oracle_touch [PAGES [THREADS]]     (default 200 pages, 2 threads)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#define PAGE 4096UL

static unsigned long pages = 200;

/* Write each page of the region `arg` once, in order, from the calling thread. */
static void *touch(void *arg)
{
	char *region = arg;
	unsigned long i;

	for (i = 0; i < pages; i++)
		region[i * PAGE] = 1;
	printf("region=%p-%p pages=%lu\n", (void *)region, (void *)(region + pages * PAGE), pages);
	return NULL;
}

static char *new_region(void)
{
	void *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

int main(int argc, char **argv)
{
	int threads = argc > 2 ? atoi(argv[2]) : 2, i;
	pthread_t tid[64];

	if (argc > 1)
		pages = strtoul(argv[1], NULL, 10);
	if (pages < 1 || threads < 1 || threads > 64) {
		fprintf(stderr, "usage: oracle_touch [PAGES [THREADS (1-64)]]\n");
		return 2;
	}
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	touch(new_region());
	for (i = 1; i < threads; i++)
		if (pthread_create(&tid[i], NULL, touch, new_region()) != 0) {
			perror("pthread_create");
			return 1;
		}
	for (i = 1; i < threads; i++)
		pthread_join(tid[i], NULL);
	return 0;
}
