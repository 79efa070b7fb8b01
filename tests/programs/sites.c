/*
 * sites: faults of known counts made by three named functions, for the
 * fault-sites view (pfharness sites, issue 26).
 *
 *   sites FILE
 *
 * - touch_100() writes one byte to each of 100 fresh anonymous pages: 100
 *   minor write faults, each at an instruction of touch_100().
 * - touch_300() does the same to 300 pages: 300.
 * - read_file() reads one byte of each of READ_PAGES pages of FILE (at least
 *   that many pages, on a disk-like file system: the host's 9p root in the
 *   VM), mapped read-only after its pages were dropped from the page cache
 *   (POSIX_FADV_DONTNEED on the file, then /proc/sys/vm/drop_caches when the
 *   process may write it), with MADV_RANDOM (no read-ahead, so fault-around
 *   finds no neighbour in the cache): READ_PAGES major read faults.
 * Transparent huge pages are off for the process. Each function runs once
 * first on nothing (0 pages), so that its code page and its stack are
 * faulted in before the counted run: every fault of the counted run is one
 * of its pages. Prints the three ranges, then exact_end()'s count:
 *   touch_100=0x<start>-0x<end> touch_300=0x<start>-0x<end> read_file=0x<start>-0x<end> sum=<n>
 *   rusage_faults=<n>
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "exact_end.h"

#define PAGE 4096UL
#define READ_PAGES 64

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static __attribute__((noinline, noclone)) void touch_100(volatile char *p, unsigned long pages)
{
	for (unsigned long i = 0; i < pages && i < 100; i++)
		p[i * PAGE] = 1;
}

static __attribute__((noinline, noclone)) void touch_300(volatile char *p, unsigned long pages)
{
	for (unsigned long i = 0; i < pages && i < 300; i++)
		p[i * PAGE] = 1;
}

static __attribute__((noinline, noclone)) unsigned long read_file(const volatile char *p, unsigned long pages)
{
	unsigned long sum = 0;

	for (unsigned long i = 0; i < pages && i < READ_PAGES; i++)
		sum += (unsigned char)p[i * PAGE];
	return sum;
}

static char *anonymous(unsigned long pages)
{
	char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap anon");
	return p;
}

/* FILE mapped read-only, its pages out of the page cache, read-ahead off. */
static char *dropped_file(const char *path)
{
	char *p;
	int fd = open(path, O_RDONLY), caches;

	if (fd < 0)
		die(path);
	p = mmap(NULL, READ_PAGES * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		die("mmap file");
	if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0 || madvise(p, READ_PAGES * PAGE, MADV_RANDOM) != 0)
		die("fadvise/madvise");
	caches = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (caches >= 0) {
		if (write(caches, "1", 1) != 1)
			die("drop_caches");
		close(caches);
	}
	close(fd);
	return p;
}

int main(int argc, char **argv)
{
	char *a100, *a300, *file;
	unsigned long sum;

	if (argc < 2)
		return 2;
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0)
		die("prctl");
	a100 = anonymous(100);
	a300 = anonymous(300);
	file = dropped_file(argv[1]);
	touch_100(a100, 0);
	touch_300(a300, 0);
	sum = read_file(file, 0);
	touch_100(a100, 100);
	touch_300(a300, 300);
	sum += read_file(file, READ_PAGES);
	printf("touch_100=%p-%p touch_300=%p-%p read_file=%p-%p sum=%lu\n", (void *)a100, (void *)(a100 + 100 * PAGE),
	       (void *)a300, (void *)(a300 + 300 * PAGE), (void *)file, (void *)(file + READ_PAGES * PAGE), sum);
	fflush(stdout);
	exact_end();
}
