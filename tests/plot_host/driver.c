// SPDX-License-Identifier: GPL-2.0
/*
 * The module's plot core (kmod_templates/common/plot_core.c.j2, rendered to
 * plot_core.c) as a host program: reads record sets on stdin and prints, for
 * each, exactly the lines the module prints for that plot (without the
 * "pf_probe_X: " prefix), then a line "==== end of set". Built and driven by
 * tests/test_plot_equal.py; compile with -DREGION_NAME_MAX, -DBAND_NONE_NAME,
 * -DRECORD_FLAG_CLASS_SHIFT and -DRECORD_FLAG_CLASS_MASK from
 * pfharness/results/output_format.py and -I the directory of plot_core.c.
 *
 * One record set, every number decimal:
 *   plot SCALE PID CLASS NREGIONS NRECORDS CLASS_KEY
 *   COMM                  (the rest of the line)
 *   CLASS_TITLE           (the rest of the line, empty for a plot of all faults)
 *   KIND NAME             (NREGIONS lines: the region table: its kind, e.g. code,
 *                         and its name as region_name() gives it)
 *   TIME ADDRESS REGION FLAGS   (NRECORDS lines)
 * SCALE is folded or linear; CLASS the fault class of the plot (only used
 * when the core was rendered with classify). A core rendered without folded
 * (the course modules' linear plot) draws every set on the linear scale.
 */
#include "shim.h"

/* The module's record, as records.c.j2 declares it (output_format.RECORD). */
struct fault_record {
	u64 time_ns;
	u64 address;
	u32 tgid;
	u16 region;
	u8 access;
	u8 flags;
	u8 segment;	/* the course modules' pf_probe_C: the class, from flags */
};

#define SET_END "==== end of set"
#define NAME_LINE_MAX 256

/* What the rest of the module gives the core. */
static struct fault_record *records;
static int tpid;
#ifdef PLOT_FOLDED	/* the core was rendered with the folded plot (-DPLOT_FOLDED) */
static bool plot_folded;
#endif
static unsigned int regions_used;
static char (*region_names)[REGION_NAME_MAX];
static bool *region_program;	/* kind code or data: the traced program's own file */

#ifdef PLOT_FOLDED	/* what the folded plot names its bands after */
/* region_name() - the name of region @index, "?" for one the table does not hold. */
static void region_name(unsigned int index, char *buf, size_t size)
{
	snprintf(buf, size, "%s", index < regions_used ? region_names[index] : BAND_NONE_NAME);
}

/* region_is_program() - is region @index of kind code or data? */
static bool region_is_program(unsigned int index)
{
	return index < regions_used && region_program[index];
}
#endif

#include "plot_core.c"

static void die(const char *what, unsigned long long set)
{
	fprintf(stderr, "driver: record set %llu: %s\n", set, what);
	exit(2);
}

/* read_text() - one whole line into @buf, without its newline. */
static void read_text(char *buf, size_t size, unsigned long long set)
{
	size_t n;

	if (!fgets(buf, (int)size, stdin))
		die("the input ends inside a record set", set);
	n = strlen(buf);
	if (n == 0 || buf[n - 1] != '\n')
		die("a line is too long or has no newline", set);
	buf[n - 1] = '\0';
}

static void read_set(unsigned long long set, unsigned int nregions, u64 nrecords)
{
	char line[NAME_LINE_MAX];
	unsigned int r;
	u64 i;

	char *name;

	region_names = calloc(nregions ? nregions : 1, sizeof(*region_names));
	region_program = calloc(nregions ? nregions : 1, sizeof(*region_program));
	records = calloc(nrecords ? nrecords : 1, sizeof(*records));
	if (!region_names || !region_program || !records)
		die("out of memory", set);
	for (r = 0; r < nregions; r++) {
		read_text(line, sizeof(line), set);
		name = strchr(line, ' ');
		if (!name)
			die("a region line is not KIND NAME", set);
		*name++ = '\0';
		if (strlen(name) >= sizeof(region_names[r]))
			die("a region name is longer than the module's REGION_NAME_MAX - 1", set);
		memcpy(region_names[r], name, strlen(name) + 1);
		region_program[r] = !strcmp(line, "code") || !strcmp(line, "data");
	}
	for (i = 0; i < nrecords; i++) {
		unsigned long long t, address;
		unsigned int region, flags;

		read_text(line, sizeof(line), set);
		if (sscanf(line, "%llu %llu %u %u", &t, &address, &region, &flags) != 4 ||
		    region > 0xffff || flags > 0xff)
			die("a record is not TIME ADDRESS REGION FLAGS", set);
		records[i].time_ns = t;
		records[i].address = address;
		records[i].region = (u16)region;
		records[i].flags = (u8)flags;
		records[i].segment = (u8)((flags & RECORD_FLAG_CLASS_MASK) >> RECORD_FLAG_CLASS_SHIFT);
	}
}

int main(void)
{
	char header[NAME_LINE_MAX], scale[16], class_key[32], comm[NAME_LINE_MAX], title[NAME_LINE_MAX];
	unsigned long long set = 0;
	unsigned int nregions;
	struct plot_extent clock;
	u64 nrecords;
	int cls;

	while (fgets(header, sizeof(header), stdin)) {
		if (sscanf(header, "plot %15s %d %d %u %llu %31s", scale, &tpid, &cls, &nregions,
			   &nrecords, class_key) != 6)
			die("the header is not: plot SCALE PID CLASS NREGIONS NRECORDS CLASS_KEY", set);
		read_text(comm, sizeof(comm), set);
		read_text(title, sizeof(title), set);
		read_set(set, nregions, nrecords);
		regions_used = nregions;
#ifdef PLOT_FOLDED
		plot_folded = !strcmp(scale, "folded");
		/* plot_begin(), with calloc for kvcalloc */
		plot_slots = regions_used + 1;
		plot_members = calloc(plot_slots, sizeof(*plot_members));
		plot_bands = calloc(plot_slots, sizeof(*plot_bands));
		plot_order = calloc(plot_slots, sizeof(*plot_order));
		if (!plot_members || !plot_bands || !plot_order)
			die("out of memory", set);
#endif
		plot_measure(nrecords, PLOT_ALL, &clock);
		plot_one(nrecords, cls, comm, class_key, title, &clock);
#ifdef PLOT_FOLDED
		free(plot_order);
		free(plot_bands);
		free(plot_members);
#endif
		free(records);
		free(region_program);
		free(region_names);
		puts(SET_END);
		set++;
	}
	return 0;
}
