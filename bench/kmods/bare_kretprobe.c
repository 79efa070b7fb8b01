// SPDX-License-Identifier: GPL-2.0
/*
 * bare_kretprobe: the floor for any kretprobe design (pf_probe_A/B/C record a
 * fault when handle_mm_fault() returns). The entry handler makes the same
 * test as pf_probe_* (vma->vm_mm->owner under RCU) and declines the return
 * probe for other processes; the return handler only counts. Benchmark only.
 */
#include <linux/atomic.h>
#include <linux/kprobes.h>
#include <linux/mm_types.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>

static int tpid;
module_param(tpid, int, 0444);
MODULE_PARM_DESC(tpid, "Process whose faults are counted");

static atomic64_t seen = ATOMIC64_INIT(0);

static int bare_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct vm_area_struct *vma = (struct vm_area_struct *)regs_get_kernel_argument(regs, 0);
	struct task_struct *owner;
	bool match = false;

	if (!vma || !vma->vm_mm)
		return 1;
	rcu_read_lock();
	owner = rcu_dereference(vma->vm_mm->owner);
	if (owner)
		match = task_tgid_nr(owner) == tpid;
	rcu_read_unlock();
	return match ? 0 : 1; /* non-zero: no return probe on this call */
}

static int bare_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	atomic64_inc(&seen);
	return 0;
}

static struct kretprobe bare_probe = {
	.kp.symbol_name = "handle_mm_fault",
	.entry_handler = bare_entry,
	.handler = bare_return,
	.maxactive = 16,
};

static int __init bare_init(void)
{
	return register_kretprobe(&bare_probe);
}

static void __exit bare_exit(void)
{
	unregister_kretprobe(&bare_probe);
	pr_info("bare_kretprobe: summary pid=%d faults=%lld missed=%d\n", tpid, atomic64_read(&seen),
		bare_probe.nmissed);
}

module_init(bare_init);
module_exit(bare_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("pfharness benchmark: a bare kretprobe that filters by pid");
