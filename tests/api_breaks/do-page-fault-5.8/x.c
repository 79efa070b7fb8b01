#include <linux/module.h>
#include <linux/ptrace.h>
/* x86's do_page_fault became exc_page_fault in 5.8 */
extern void do_page_fault(struct pt_regs *regs, unsigned long error_code, unsigned long address);
static int __init x_init(void)
{
	pr_info("%px\n", do_page_fault);
	return 0;
}
module_init(x_init);
MODULE_LICENSE("GPL");
