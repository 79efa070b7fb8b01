/*
 * read_zero: fill N fresh anonymous pages with one read() from /dev/zero.
 *
 *   read_zero N
 *
 * The read is made with this program's own `syscall` instruction (raw_read
 * below, not libc's), and the kernel clears the buffer with clear_user():
 * each of the N pages faults in kernel mode, on the program's behalf, and
 * the user IP of each such fault is where the system call returns to,
 * raw_read_ret. Transparent huge pages are off (PR_SET_THP_DISABLE): one
 * fault per 4 KiB page. Prints
 *   buf=0x<start>-0x<end> pages=<N> syscall_ret=0x<raw_read_ret> read=<bytes>
 *   rusage_faults=<minflt + majflt>
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "exact_end.h"

#define PAGE 4096UL

/* long raw_read(int fd, void *buf, unsigned long len): read(2) by its number, 0 on x86-64. */
__asm__(".text\n"
	".globl raw_read\n"
	".type raw_read, @function\n"
	"raw_read:\n"
	"	xorl %eax, %eax\n"
	"	syscall\n"
	".globl raw_read_ret\n"
	"raw_read_ret:\n"
	"	ret\n"
	".size raw_read, . - raw_read\n");

long raw_read(int fd, void *buf, unsigned long len);
extern char raw_read_ret[];

int main(int argc, char **argv)
{
	unsigned long pages = argc > 1 ? strtoul(argv[1], NULL, 0) : 0;
	char *buf;
	long got;
	int fd;

	if (argc != 2 || pages < 1 || pages > 65536) {
		fprintf(stderr, "usage: read_zero N (pages, 1-65536)\n");
		return 2;
	}
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) {
		perror("prctl(PR_SET_THP_DISABLE)");
		return 1;
	}
	fd = open("/dev/zero", O_RDONLY);
	buf = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fd < 0 || buf == MAP_FAILED) {
		perror("read_zero");
		return 1;
	}
	got = raw_read(fd, buf, pages * PAGE);
	printf("buf=%p-%p pages=%lu syscall_ret=%p read=%ld\n", (void *)buf, (void *)(buf + pages * PAGE), pages,
	       (void *)raw_read_ret, got);
	fflush(stdout);
	exact_end();
}
