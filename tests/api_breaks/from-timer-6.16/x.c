#include <linux/module.h>
#include <linux/timer.h>
/* from_timer() was renamed timer_container_of() in 6.16 */
static struct probe { struct timer_list t; int n; } p;
static void tick(struct timer_list *t)
{
	struct probe *pr = from_timer(pr, t, t);

	pr->n++;
}
static int __init x_init(void) { timer_setup(&p.t, tick, 0); return 0; }
static void __exit x_exit(void) { timer_delete_sync(&p.t); }
module_init(x_init);
module_exit(x_exit);
MODULE_LICENSE("GPL");
