#include <linux/module.h>
#include <linux/mm.h>
/* handle_mm_fault() gained a struct pt_regs * argument in 5.9 */
static vm_fault_t call(struct vm_area_struct *vma, unsigned long address)
{
	return handle_mm_fault(vma, address, 0);
}
static int __init x_init(void) { pr_info("%px\n", call); return 0; }
module_init(x_init);
MODULE_LICENSE("GPL");
