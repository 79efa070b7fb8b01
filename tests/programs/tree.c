/*
 * tree: a process that creates a child that creates a grandchild; each
 * touches its own known number of fresh anonymous pages, once each.
 *
 *   tree fork|exec|vfork N0 N1 N2
 *
 * fork:  the child and grandchild are fork()ed copies that go on running
 *        this program without exec.
 * exec:  each is fork()ed and then execs this program again (/proc/self/exe).
 * vfork: each is vfork()ed and execs at once (the child shares the parent's
 *        memory until its exec).
 * Level L (0 = the first process) creates level L + 1 (up to 2), then maps
 * and writes N<L> pages, waits for its child, and prints one line:
 *   level=<L> pid=<pid> ppid=<creator's pid> region=0x<start>-0x<end> pages=<N> rusage_faults=<minflt + majflt>
 *   child_faults=<minflt + majflt of its child over the child's whole life, from wait4()>
 * Transparent huge pages are off (PR_SET_THP_DISABLE; MADV_NOHUGEPAGE).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define LEVELS 3

static void usage(void)
{
	fprintf(stderr, "usage: tree fork|exec|vfork N0 N1 N2\n");
	exit(2);
}

static void run_level(char **argv, int level);

/* create() - start level @level + 1 the way argv[1] says. */
static pid_t create(char **argv, int level)
{
	char next[16];
	pid_t pid;

	snprintf(next, sizeof(next), "%d", level + 1);
	if (strcmp(argv[1], "vfork") == 0) {
		pid = vfork();
		if (pid == 0) {
			execl("/proc/self/exe", "tree", argv[1], argv[2], argv[3], argv[4], next, (char *)NULL);
			_exit(127);
		}
		return pid;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (strcmp(argv[1], "exec") == 0) {
			execl("/proc/self/exe", "tree", argv[1], argv[2], argv[3], argv[4], next, (char *)NULL);
			_exit(127);
		}
		run_level(argv, level + 1);
		exit(0);
	}
	return pid;
}

static void run_level(char **argv, int level)
{
	unsigned long pages = strtoul(argv[2 + level], NULL, 0), i;
	pid_t child = -1;
	struct rusage ru, child_ru;
	char *region;
	int status;

	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) {
		perror("prctl(PR_SET_THP_DISABLE)");
		exit(1);
	}
	if (level + 1 < LEVELS) {
		child = create(argv, level);
		if (child < 0) {
			perror("fork");
			exit(1);
		}
	}
	region = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED || madvise(region, pages * PAGE, MADV_NOHUGEPAGE) != 0) {
		perror("mmap");
		exit(1);
	}
	for (i = 0; i < pages; i++)
		region[i * PAGE] = 1;
	if (child > 0 && (wait4(child, &status, 0, &child_ru) != child || !WIFEXITED(status) || WEXITSTATUS(status))) {
		fprintf(stderr, "level %d: child failed\n", level + 1);
		exit(1);
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("level=%d pid=%d ppid=%d region=%p-%p pages=%lu rusage_faults=%ld\n", level, getpid(), getppid(),
	       (void *)region, (void *)(region + pages * PAGE), pages, ru.ru_minflt + ru.ru_majflt);
	if (child > 0)
		printf("level=%d child_faults=%ld\n", level, child_ru.ru_minflt + child_ru.ru_majflt);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int level = argc > 5 ? atoi(argv[5]) : 0;

	if (argc < 5 || level < 0 || level >= LEVELS)
		usage();
	if (strcmp(argv[1], "fork") && strcmp(argv[1], "exec") && strcmp(argv[1], "vfork"))
		usage();
	run_level(argv, level);
	return 0;
}
