// SPDX-License-Identifier: GPL-2.0
/* kbundle example: a module with one parameter. */
#include <linux/init.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

static char *whom = "world";
module_param(whom, charp, 0444);
MODULE_PARM_DESC(whom, "Who to greet when the module loads");

static int __init hello_init(void)
{
	pr_info("hello: hello, %s\n", whom);
	return 0;
}

static void __exit hello_exit(void)
{
	pr_info("hello: goodbye, %s\n", whom);
}

module_init(hello_init);
module_exit(hello_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kbundle example hello module");
MODULE_VERSION("1.0");
