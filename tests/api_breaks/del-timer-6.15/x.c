#include <linux/module.h>
#include <linux/timer.h>
/* del_timer() is timer_delete() (since 6.2); the old name is gone since 6.15 */
static struct timer_list t;
static void tick(struct timer_list *unused) { }
static int __init x_init(void) { timer_setup(&t, tick, 0); return 0; }
static void __exit x_exit(void) { del_timer(&t); }
module_init(x_init);
module_exit(x_exit);
MODULE_LICENSE("GPL");
