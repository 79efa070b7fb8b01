// SPDX-License-Identifier: GPL-2.0
/*
 * pfh_warn: a test-only module that provokes one kernel WARNING at load, so
 * the test suite can prove that the harness's splat scan fails such a run.
 */
#include <linux/bug.h>
#include <linux/module.h>

static int __init pfh_warn_init(void)
{
	WARN(1, "pfh_warn: deliberate warning for the pfharness splat-scan test\n");
	return 0;
}

static void __exit pfh_warn_exit(void)
{
}

module_init(pfh_warn_init);
module_exit(pfh_warn_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("pfharness test: provoke a WARNING");
