#include <linux/module.h>
#include <linux/device.h>
/* class_create() lost its owner argument in 6.4 */
static struct class *cls;
static int __init x_init(void)
{
	cls = class_create(THIS_MODULE, "x");
	return IS_ERR(cls) ? PTR_ERR(cls) : 0;
}
static void __exit x_exit(void) { class_destroy(cls); }
module_init(x_init);
module_exit(x_exit);
MODULE_LICENSE("GPL");
