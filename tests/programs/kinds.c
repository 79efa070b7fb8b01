/*
 * kinds: known faults of each access kind, and major ones.
 *
 *   kinds FILE N [MODULE]
 *
 * - read, major: maps FILE (at least N pages, on a disk-like file system: the
 *   host's 9p root in the VM) read-only, drops its pages from the page cache
 *   (POSIX_FADV_DONTNEED) and, with MADV_RANDOM (no read-ahead, so
 *   fault-around finds no neighbour in the cache), reads one byte of each of
 *   N pages: N read faults, each major (the page is read in).
 * - write, minor: writes one byte to each of N fresh anonymous pages.
 * - exec, minor: writes a `ret` instruction every 16 pages of a memfd (in
 *   the page cache) and calls each of N of them through a PROT_EXEC
 *   mapping: one instruction-fetch fault per 64 KiB fault-around window.
 * - a file mapped twice: one page of FILE mapped again 64 MiB and 128 MiB
 *   below its first mapping (as ld.so maps ld.so.cache twice), read once
 *   each: two more regions of FILE, not one stretched over the gap.
 * Prints the five address ranges, then (with MODULE) the files
 * /proc/MODULE/records and /proc/MODULE/regions in hex, then exact_end()'s
 * count:
 *   read=0x<start>-0x<end> write=0x<start>-0x<end> exec=0x<start>-0x<end> stride=<pages> sum=<n>
 *   twice=0x<start>-0x<end> again=0x<start>-0x<end>
 *   proc <name> <hex>
 *   rusage_faults=<n>
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "exact_end.h"

#define PAGE 4096UL
#define EXEC_STRIDE 16
#define MIB (1024UL * 1024)

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void dump(const char *module, const char *name)
{
	char path[256], buf[65536];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/%s", module, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die(path);
	printf("proc %s ", name);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			printf("%02x", (unsigned char)buf[i]);
	if (n < 0)
		die("read");
	printf("\n");
	close(fd);
}

int main(int argc, char **argv)
{
	unsigned long n, i;
	volatile unsigned long sum = 0;
	char *file, *anon, *code, *twice, *again;
	int fd, mfd;

	if (argc < 3)
		return 2;
	n = strtoul(argv[2], NULL, 0);
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0)
		die("prctl");

	fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		die(argv[1]);
	file = mmap(NULL, n * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (file == MAP_FAILED)
		die("mmap file");
	if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0 || madvise(file, n * PAGE, MADV_RANDOM) != 0)
		die("fadvise/madvise");
	for (i = 0; i < n; i++)
		sum += (unsigned char)file[i * PAGE];

	anon = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED)
		die("mmap anon");
	for (i = 0; i < n; i++)
		anon[i * PAGE] = 1;

	mfd = memfd_create("kinds-code", 0);
	if (mfd < 0 || ftruncate(mfd, n * EXEC_STRIDE * PAGE) != 0)
		die("memfd");
	for (i = 0; i < n; i++)
		if (pwrite(mfd, "\xc3", 1, i * EXEC_STRIDE * PAGE) != 1)
			die("pwrite");
	code = mmap(NULL, n * EXEC_STRIDE * PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE, mfd, 0);
	if (code == MAP_FAILED)
		die("mmap code");
	for (i = 0; i < n; i++)
		((void (*)(void))(code + i * EXEC_STRIDE * PAGE))();

	/* Hints below the first mapping, where nothing is mapped yet (mmap grows down). */
	twice = mmap(file - 64 * MIB, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	again = mmap(file - 128 * MIB, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (twice == MAP_FAILED || again == MAP_FAILED)
		die("mmap file again");
	sum += (unsigned char)twice[0] + (unsigned char)again[0];

	printf("read=%p-%p write=%p-%p exec=%p-%p stride=%d sum=%lu\n", (void *)file, (void *)(file + n * PAGE),
	       (void *)anon, (void *)(anon + n * PAGE), (void *)code, (void *)(code + n * EXEC_STRIDE * PAGE),
	       EXEC_STRIDE, (unsigned long)sum);
	printf("twice=%p-%p again=%p-%p\n", (void *)twice, (void *)(twice + PAGE), (void *)again,
	       (void *)(again + PAGE));
	if (argc > 3) {
		dump(argv[3], "records");
		dump(argv[3], "regions");
	}
	fflush(stdout);
	exact_end();
}
