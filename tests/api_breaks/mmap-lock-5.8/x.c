#include <linux/module.h>
#include <linux/mm.h>
#include <linux/sched.h>
/* mm->mmap_sem became mmap_lock (use mmap_read_lock()) in 5.8 */
static int __init x_init(void)
{
	down_read(&current->mm->mmap_sem);
	up_read(&current->mm->mmap_sem);
	return 0;
}
module_init(x_init);
MODULE_LICENSE("GPL");
