/*
 * pf_probe_B.c - CS-550 Assignment 03, part B
 *
 * Records the time and address of every page fault of one process and, when
 * the module is unloaded, prints a scatter plot of them: time on the X axis,
 * virtual page number on the Y axis, 30 lines high and 70 columns wide.
 *
 * Usage: sudo insmod pf_probe_B.ko tpid=<pid> ... sudo rmmod pf_probe_B
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/kprobes.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/timekeeping.h>
#include <linux/vmalloc.h>
#include <linux/math64.h>

MODULE_LICENSE("GPL");
MODULE_AUTHOR("A. Student");
MODULE_DESCRIPTION("Scatter plot of the page faults of one process");

#define MAX_FAULTS (1 << 16)
#define ROWS 30
#define COLS 70
#define DASHES "----------------------------------------------------------------------"

static int tpid;
module_param(tpid, int, 0444);
MODULE_PARM_DESC(tpid, "pid of the process to trace");

struct fault_rec {
	u64 time_ns;
	unsigned long page;
};

static struct fault_rec *records;
static unsigned long count, dropped;
static DEFINE_SPINLOCK(lock);

static int handler_pre(struct kprobe *p, struct pt_regs *regs)
{
	unsigned long flags;

	if (current->tgid != tpid)
		return 0;
	spin_lock_irqsave(&lock, flags);
	if (count < MAX_FAULTS) {
		records[count].time_ns = ktime_get_ns();
		records[count].page = regs->si >> PAGE_SHIFT;
		count++;
	} else {
		dropped++;
	}
	spin_unlock_irqrestore(&lock, flags);
	return 0;
}

static struct kprobe kp = {
	.symbol_name = "handle_mm_fault",
	.pre_handler = handler_pre,
};

static char grid[ROWS][COLS + 1];

static void print_plot(void)
{
	u64 tmin, tmax, tspan;
	unsigned long pmin, pmax, pspan, i;
	int r, c;

	if (count == 0) {
		pr_info("pf_probe_B: no page faults recorded for pid %d\n", tpid);
		return;
	}
	tmin = tmax = records[0].time_ns;
	pmin = pmax = records[0].page;
	for (i = 1; i < count; i++) {
		tmin = min(tmin, records[i].time_ns);
		tmax = max(tmax, records[i].time_ns);
		pmin = min(pmin, records[i].page);
		pmax = max(pmax, records[i].page);
	}
	tspan = tmax - tmin;
	pspan = pmax - pmin;

	memset(grid, ' ', sizeof(grid));
	for (i = 0; i < count; i++) {
		c = tspan ? div64_u64((records[i].time_ns - tmin) * (COLS - 1), tspan) : 0;
		r = pspan ? div64_u64((u64)(pmax - records[i].page) * (ROWS - 1), pspan) : ROWS - 1;
		if (r < 0 || r >= ROWS || c < 0 || c >= COLS) {
			pr_info("pf_probe_B: point %lu outside the plot (row %d col %d)\n", i, r, c);
			continue;
		}
		grid[r][c] = '*';
	}

	pr_info("pf_probe_B: Page faults of pid %d: %lu recorded, %lu dropped\n", tpid, count, dropped);
	pr_info("pf_probe_B: Y axis: virtual page number, X axis: time (ms)\n");
	for (r = 0; r < ROWS; r++) {
		unsigned long page = pmax - div64_u64((u64)pspan * r, ROWS - 1);

		grid[r][COLS] = '\0';
		pr_info("pf_probe_B: %12lx |%s|\n", page, grid[r]);
	}
	pr_info("pf_probe_B: %12s +%.*s+\n", "", COLS, DASHES);
	pr_info("pf_probe_B: %12s  0%*llu\n", "time (ms)", COLS - 1, div64_u64(tspan, NSEC_PER_MSEC));
}

static int __init pf_probe_init(void)
{
	struct task_struct *task;
	int ret;

	if (tpid <= 0) {
		pr_err("pf_probe_B: give the pid to trace: insmod pf_probe_B.ko tpid=<pid>\n");
		return -EINVAL;
	}
	records = vmalloc(MAX_FAULTS * sizeof(*records));
	if (!records)
		return -ENOMEM;
	ret = register_kprobe(&kp);
	if (ret < 0) {
		pr_err("pf_probe_B: register_kprobe failed: %d\n", ret);
		vfree(records);
		return ret;
	}
	/* The defect: no process with pid tpid gives a NULL task, dereferenced here. */
	task = pid_task(find_vpid(tpid), PIDTYPE_PID);
	if (task->tgid != tpid) {
		pr_err("pf_probe_B: %d is a thread of process %d: give the process id\n", tpid, task->tgid);
		unregister_kprobe(&kp);
		vfree(records);
		return -EINVAL;
	}
	pr_info("pf_probe_B: recording the page faults of pid %d (%s)\n", tpid, task->comm);
	return 0;
}

static void __exit pf_probe_exit(void)
{
	unregister_kprobe(&kp);
	print_plot();
	vfree(records);
}

module_init(pf_probe_init);
module_exit(pf_probe_exit);
