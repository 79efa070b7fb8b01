#include <linux/module.h>
#include <linux/uaccess.h>
/* access_ok() lost its type argument in 5.0 */
static int check(const void __user *p) { return access_ok(VERIFY_READ, p, 4); }
static int __init x_init(void) { pr_info("%px\n", check); return 0; }
module_init(x_init);
MODULE_LICENSE("GPL");
