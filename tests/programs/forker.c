/*
 * forker: create N short-lived children, one after another; each writes one
 * fresh page and exits at once. For the process table's bound (follow=1).
 *
 *   forker N
 * Prints: children=<N created and reaped>
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 0) : 0, i, done = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: forker N\n");
		return 2;
	}
	for (i = 0; i < n; i++) {
		pid_t pid = fork();
		int status;

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (page == MAP_FAILED)
				_exit(1);
			page[0] = 1;
			_exit(0);
		}
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
			done++;
	}
	printf("children=%lu\n", done);
	return done == n ? 0 : 1;
}
