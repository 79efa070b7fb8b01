#include <linux/module.h>
#include <linux/proc_fs.h>
/* PDE_DATA() became pde_data() in 5.17 */
static void *data_of(struct inode *inode) { return PDE_DATA(inode); }
static int __init x_init(void) { pr_info("%px\n", data_of); return 0; }
module_init(x_init);
MODULE_LICENSE("GPL");
