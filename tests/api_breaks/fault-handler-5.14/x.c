#include <linux/module.h>
#include <linux/kprobes.h>
/* struct kprobe lost .fault_handler in 5.14 */
static int on_fault(struct kprobe *p, struct pt_regs *regs, int trapnr)
{
	return 0;
}
static struct kprobe kp = { .symbol_name = "handle_mm_fault", .fault_handler = on_fault };
static int __init x_init(void) { return register_kprobe(&kp); }
static void __exit x_exit(void) { unregister_kprobe(&kp); }
module_init(x_init);
module_exit(x_exit);
MODULE_LICENSE("GPL");
