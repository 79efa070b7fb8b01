#include <linux/module.h>
/* u64 / u64 needs __udivdi3 in a 32-bit build: use div64_u64() or do_div() */
static u64 span = 1000, addr = 123456789;
module_param(span, ullong, 0444);
static int __init x_init(void) { pr_info("%llu\n", addr / span); return 0; }
module_init(x_init);
MODULE_LICENSE("GPL");
