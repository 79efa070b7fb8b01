// SPDX-License-Identifier: GPL-2.0
/*
 * bare_kprobe: the floor for any kprobe design. A kprobe on handle_mm_fault()
 * whose handler only checks whether the fault belongs to tpid (the same test
 * as pf_probe_*: vma->vm_mm->owner under RCU) and counts it. Benchmark only.
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

static int bare_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct vm_area_struct *vma = (struct vm_area_struct *)regs_get_kernel_argument(regs, 0);
	struct task_struct *owner;
	bool match = false;

	if (!vma || !vma->vm_mm)
		return 0;
	rcu_read_lock();
	owner = rcu_dereference(vma->vm_mm->owner);
	if (owner)
		match = task_tgid_nr(owner) == tpid;
	rcu_read_unlock();
	if (match)
		atomic64_inc(&seen);
	return 0;
}

static struct kprobe bare_probe = {
	.symbol_name = "handle_mm_fault",
	.pre_handler = bare_pre,
};

static int __init bare_init(void)
{
	return register_kprobe(&bare_probe);
}

static void __exit bare_exit(void)
{
	unregister_kprobe(&bare_probe);
	pr_info("bare_kprobe: summary pid=%d faults=%lld\n", tpid, atomic64_read(&seen));
}

module_init(bare_init);
module_exit(bare_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("pfharness benchmark: a bare kprobe that filters by pid");
