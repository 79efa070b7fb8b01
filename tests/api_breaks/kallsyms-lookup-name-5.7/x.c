#include <linux/module.h>
#include <linux/kallsyms.h>
/* kallsyms_lookup_name() is no longer exported to modules since 5.7 */
static int __init x_init(void)
{
	pr_info("%lx\n", kallsyms_lookup_name("handle_mm_fault"));
	return 0;
}
module_init(x_init);
MODULE_LICENSE("GPL");
