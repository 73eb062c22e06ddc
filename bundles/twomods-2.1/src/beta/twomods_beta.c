// SPDX-License-Identifier: GPL-2.0
/* kbundle example: depends on twomods_alpha. */
#include <linux/module.h>

extern int twomods_alpha_answer(void);

static int __init beta_init(void)
{
	pr_info("twomods_beta: answer is %d\n", twomods_alpha_answer());
	return 0;
}
static void __exit beta_exit(void) { }
module_init(beta_init);
module_exit(beta_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kbundle example: beta");
