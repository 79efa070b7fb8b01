#include <linux/module.h>
#include <linux/time.h>
/* getnstimeofday() and struct timespec are gone since 5.6 */
static int __init x_init(void)
{
	struct timespec ts;

	getnstimeofday(&ts);
	pr_info("%ld\n", ts.tv_nsec);
	return 0;
}
module_init(x_init);
MODULE_LICENSE("GPL");
