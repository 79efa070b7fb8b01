#include <linux/module.h>
#include <linux/proc_fs.h>
/* proc_create() takes a struct proc_ops since 5.6 */
static const struct file_operations fops = { .owner = THIS_MODULE };
static int __init x_init(void) { return proc_create("x", 0444, NULL, &fops) ? 0 : -ENOMEM; }
static void __exit x_exit(void) { remove_proc_entry("x", NULL); }
module_init(x_init);
module_exit(x_exit);
MODULE_LICENSE("GPL");
