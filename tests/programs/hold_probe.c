/*
 * hold_probe: a short program for the hold-before-exec test.
 *
 * main() first sleeps (so that a module loaded after the program started,
 * as the course's script does, is armed by then), then touches one fresh
 * page of its own and prints that page's address. Every fault before that
 * page's fault belongs to the start-up (loader, libc) or to the sleep.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char page[4096] __attribute__((aligned(4096)));

int main(int argc, char **argv)
{
	unsigned int delay_ms = argc > 1 ? (unsigned int)atoi(argv[1]) : 0;

	usleep(delay_ms * 1000);
	page[0] = 1;
	printf("main_page=%p\n", (void *)page);
	return 0;
}
