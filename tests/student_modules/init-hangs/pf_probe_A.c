/*
 * pf_probe_A.c - CS-550 Assignment 03, part A
 *
 * Prints the virtual address of every page fault of one process.
 * A kprobe on handle_mm_fault(vma, address, flags, regs): on x86-64 the
 * first argument is in %rdi and the second in %rsi.
 *
 * Usage: sudo insmod pf_probe_A.ko tpid=<pid>
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/kprobes.h>
#include <linux/sched.h>
#include <linux/mm.h>

MODULE_LICENSE("GPL");
MODULE_AUTHOR("A. Student");
MODULE_DESCRIPTION("Print the page faults of one process");

static int tpid;
module_param(tpid, int, 0444);
MODULE_PARM_DESC(tpid, "pid of the process to trace");

static unsigned long faults;

/* Called just before handle_mm_fault() runs. */
static int handler_pre(struct kprobe *p, struct pt_regs *regs)
{
	unsigned long address = regs->si;

	/*
	 * The process, not the thread: every thread of the target has the
	 * target's pid as its tgid.
	 */
	if (current->tgid != tpid)
		return 0;

	faults++;
	pr_info("pf_probe_A: pid %d fault at 0x%lx\n", current->tgid, address);
	return 0;
}

static struct kprobe kp = {
	.symbol_name = "handle_mm_fault",
	.pre_handler = handler_pre,
};

static int __init pf_probe_init(void)
{
	int ret;

	if (tpid <= 0) {
		pr_err("pf_probe_A: give the pid to trace: insmod pf_probe_A.ko tpid=<pid>\n");
		return -EINVAL;
	}
	ret = register_kprobe(&kp);
	if (ret < 0) {
		pr_err("pf_probe_A: register_kprobe failed: %d\n", ret);
		return ret;
	}
	pr_info("pf_probe_A: tracing pid %d (probe at %p)\n", tpid, kp.addr);
	/*
	 * The defect: waits for the target's first fault before returning, but the target is held
	 * until insmod returns (as the course's script starts it, it may be too): it never comes.
	 */
	while (!READ_ONCE(faults))
		cpu_relax();
	return 0;
}

static void __exit pf_probe_exit(void)
{
	unregister_kprobe(&kp);
	pr_info("pf_probe_A: unloaded, %lu faults printed\n", faults);
}

module_init(pf_probe_init);
module_exit(pf_probe_exit);
