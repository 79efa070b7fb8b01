/*
 * pf_probe_C.c - CS-550 Assignment 03, extra credit
 *
 * As pf_probe_C, but with up to three scatter plots at unload: the faults in
 * the code segment, those in the data segment, and the others (mostly the
 * stack), from mm->start_code/end_code and mm->start_data/end_data. A plot
 * with no faults is left out.
 *
 * Usage: sudo insmod pf_probe_C.ko tpid=<pid> ... sudo rmmod pf_probe_C
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/kprobes.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/timekeeping.h>
#include <linux/vmalloc.h>
#include <linux/math64.h>
#include <linux/mm_types.h>

MODULE_LICENSE("GPL");
MODULE_AUTHOR("A. Student");
MODULE_DESCRIPTION("Scatter plots of the page faults of one process, by segment");

#define MAX_FAULTS (1 << 16)
#define ROWS 30
#define COLS 70
#define DASHES "----------------------------------------------------------------------"

static int tpid;
module_param(tpid, int, 0444);
MODULE_PARM_DESC(tpid, "pid of the process to trace");

enum segment { CODE, DATA, OTHER, NSEGMENTS };
static const char *const segment_names[NSEGMENTS] = { "code", "data", "other" };

struct fault_rec {
	u64 time_ns;
	unsigned long page;
	enum segment seg;
};

static struct fault_rec *records;
static unsigned long count, dropped;
static DEFINE_SPINLOCK(lock);

static int handler_pre(struct kprobe *p, struct pt_regs *regs)
{
	unsigned long flags, address = regs->si;
	struct mm_struct *mm = current->mm;
	enum segment seg = OTHER;

	if (current->tgid != tpid || !mm)
		return 0;
	if (address >= mm->start_code && address < mm->end_code)
		seg = CODE;
	else if (address >= mm->start_data && address < mm->end_data)
		seg = DATA;
	spin_lock_irqsave(&lock, flags);
	if (count < MAX_FAULTS) {
		records[count].time_ns = ktime_get_ns();
		records[count].page = address >> PAGE_SHIFT;
		records[count].seg = seg;
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

static void print_plot(enum segment seg)
{
	u64 tmin, tmax, tspan;
	unsigned long pmin = ULONG_MAX, pmax = 0, pspan, i, n = 0;
	int r, c;

	tmin = U64_MAX;
	tmax = 0;
	for (i = 0; i < count; i++) {
		if (records[i].seg != seg)
			continue;
		n++;
		tmin = min(tmin, records[i].time_ns);
		tmax = max(tmax, records[i].time_ns);
		pmin = min(pmin, records[i].page);
		pmax = max(pmax, records[i].page);
	}
	if (n == 0)
		return;	/* no faults in this segment: leave the plot out */
	tspan = tmax - tmin;
	pspan = pmax - pmin;

	memset(grid, ' ', sizeof(grid));
	for (i = 0; i < count; i++) {
		if (records[i].seg != seg)
			continue;
		c = tspan ? div64_u64((records[i].time_ns - tmin) * (COLS - 1), tspan) : 0;
		r = pspan ? div64_u64((u64)(pmax - records[i].page) * (ROWS - 1), pspan) : ROWS - 1;
		if (r < 0 || r >= ROWS || c < 0 || c >= COLS) {
			pr_info("pf_probe_C: point %lu outside the plot (row %d col %d)\n", i, r, c);
			continue;
		}
		grid[r][c] = '*';
	}

	pr_info("pf_probe_C: Page faults of pid %d in the %s segment: %lu of %lu recorded, %lu dropped\n",
		tpid, segment_names[seg], n, count, dropped);
	pr_info("pf_probe_C: Y axis: virtual page number, X axis: time (ms)\n");
	for (r = 0; r < ROWS; r++) {
		unsigned long page = pmax - div64_u64((u64)pspan * r, ROWS - 1);

		grid[r][COLS] = '\0';
		pr_info("pf_probe_C: %12lx |%s|\n", page, grid[r]);
	}
	pr_info("pf_probe_C: %12s +%.*s+\n", "", COLS, DASHES);
	pr_info("pf_probe_C: %12s  0%*llu\n", "time (ms)", COLS - 1, div64_u64(tspan, NSEC_PER_MSEC));
}

static int __init pf_probe_init(void)
{
	int ret;

	if (tpid <= 0) {
		pr_err("pf_probe_C: give the pid to trace: insmod pf_probe_C.ko tpid=<pid>\n");
		return -EINVAL;
	}
	records = vmalloc(MAX_FAULTS * sizeof(*records));
	if (!records)
		return -ENOMEM;
	ret = register_kprobe(&kp);
	if (ret < 0) {
		pr_err("pf_probe_C: register_kprobe failed: %d\n", ret);
		vfree(records);
		return ret;
	}
	pr_info("pf_probe_C: recording the page faults of pid %d\n", tpid);
	return 0;
}

static void __exit pf_probe_exit(void)
{
	enum segment seg;

	unregister_kprobe(&kp);
	if (count == 0)
		pr_info("pf_probe_C: no page faults recorded for pid %d\n", tpid);
	for (seg = CODE; seg < NSEGMENTS; seg++)
		print_plot(seg);
	vfree(records);
}

module_init(pf_probe_init);
module_exit(pf_probe_exit);
