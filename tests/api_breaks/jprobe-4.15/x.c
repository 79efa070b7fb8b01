#include <linux/module.h>
#include <linux/kprobes.h>
/* jprobes are gone since 4.15 */
static void entry(void) { jprobe_return(); }
static struct jprobe jp = { .entry = entry, .kp = { .symbol_name = "handle_mm_fault" } };
static int __init x_init(void) { return register_jprobe(&jp); }
static void __exit x_exit(void) { unregister_jprobe(&jp); }
module_init(x_init);
module_exit(x_exit);
MODULE_LICENSE("GPL");
