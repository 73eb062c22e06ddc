// SPDX-License-Identifier: GPL-2.0
/* kbundle example: exports a symbol that the beta module uses. */
#include <linux/module.h>

int twomods_alpha_answer(void)
{
	return 42;
}
EXPORT_SYMBOL_GPL(twomods_alpha_answer);

static int __init alpha_init(void) { return 0; }
static void __exit alpha_exit(void) { }
module_init(alpha_init);
module_exit(alpha_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kbundle example: alpha");
