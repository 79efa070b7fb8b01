#include <linux/module.h>
#include <linux/string.h>
/* strlcpy() is gone since 6.8: strscpy() */
static char name[16];
static int __init x_init(void) { strlcpy(name, "pf_probe", sizeof(name)); return 0; }
module_init(x_init);
MODULE_LICENSE("GPL");
