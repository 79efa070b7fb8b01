/*
 * segments: known page faults in each segment of the process, for pf_probe_C.
 *
 *   segments DATA_PAGES STACK_PAGES
 *
 * - data: writes one byte to each page of a large *initialized* global array,
 *   which the linker puts in .data, inside [start_data, end_data). Writes to a
 *   private file mapping fault once per page (copy on write; no fault-around).
 * - stack: recurses so that each level writes to a fresh stack page.
 * - code: calls CODE_FUNCS functions, each aligned to 64 KiB, so that each
 *   sits alone in its own fault-around window (the kernel maps up to 16
 *   neighbouring pages of a file on a read or exec fault): one fault each.
 * Prints the address ranges it used:
 *   data=0x<start>-0x<end> code=0x<start>-0x<end> stack_pages=<n>
 */
#include <stdio.h>
#include <stdlib.h>

#define PAGE 4096
#define DATA_MAX_PAGES 256
#define CODE_FUNCS 16

char data_pages[DATA_MAX_PAGES][PAGE] __attribute__((aligned(PAGE))) = { { 1 } };

#define FUNC(n) \
	__attribute__((noinline, aligned(65536))) int code_##n(int x) { return x * (n + 3) + 1; }
FUNC(0) FUNC(1) FUNC(2) FUNC(3) FUNC(4) FUNC(5) FUNC(6) FUNC(7)
FUNC(8) FUNC(9) FUNC(10) FUNC(11) FUNC(12) FUNC(13) FUNC(14) FUNC(15)

static int (*const funcs[CODE_FUNCS])(int) = {
	code_0, code_1, code_2, code_3, code_4, code_5, code_6, code_7,
	code_8, code_9, code_10, code_11, code_12, code_13, code_14, code_15,
};

__attribute__((noinline)) static int recurse(int depth)
{
	volatile char frame[PAGE];

	frame[0] = (char)depth;
	if (depth <= 1)
		return frame[0];
	return recurse(depth - 1) + frame[0];
}

int main(int argc, char **argv)
{
	int data = argc > 1 ? atoi(argv[1]) : 64;
	int stack = argc > 2 ? atoi(argv[2]) : 64;
	int i, sum = 0;

	if (data < 0 || data > DATA_MAX_PAGES || stack < 1 || stack > 1000) {
		fprintf(stderr, "usage: segments DATA_PAGES(0-%d) STACK_PAGES(1-1000)\n", DATA_MAX_PAGES);
		return 2;
	}
	for (i = 0; i < data; i++)
		data_pages[i][0] = (char)i;
	for (i = 0; i < CODE_FUNCS; i++)
		sum += funcs[i](i);
	sum += recurse(stack);
	printf("data=%p-%p code=%p-%p stack_pages=%d sum=%d\n", (void *)data_pages[0], (void *)data_pages[data],
	       (void *)code_0, (void *)((char *)code_15 + PAGE), stack, sum);
	return 0;
}
