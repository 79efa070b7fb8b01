#include <linux/module.h>
#include <linux/mm.h>
/* get_user_pages() lost its vmas argument in 6.5 */
static long pin(unsigned long address, struct page **page)
{
	return get_user_pages(address, 1, 0, page, NULL);
}
static int __init x_init(void) { pr_info("%px\n", pin); return 0; }
module_init(x_init);
MODULE_LICENSE("GPL");
