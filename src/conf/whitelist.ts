/**
 * The variable names DKMS accepts back from a sourced dkms.conf
 * (`dkms_conf_variables`) and framework.conf. Anything else a file sets is
 * private to that file and is dropped, exactly as DKMS drops it.
 */

/**
 * Debian 3.0.10's list plus the names newer DKMS added that kbundle honours
 * (BUILD_EXCLUSIVE_KERNEL_MIN/_MAX, BUILD_DEPENDS_REBUILD). The lowercase
 * names are DKMS internals that a conf can set directly; keeping them on the
 * list keeps that (odd) behaviour identical.
 */
export const DKMS_CONF_VARIABLES: readonly string[] = [
  'CLEAN', 'PACKAGE_NAME', 'PACKAGE_VERSION',
  'POST_ADD', 'POST_BUILD', 'POST_INSTALL', 'POST_REMOVE', 'PRE_BUILD', 'PRE_INSTALL',
  'BUILD_DEPENDS', 'BUILD_DEPENDS_REBUILD',
  'BUILD_EXCLUSIVE_KERNEL', 'BUILD_EXCLUSIVE_ARCH', 'BUILD_EXCLUSIVE_CONFIG',
  'BUILD_EXCLUSIVE_KERNEL_MIN', 'BUILD_EXCLUSIVE_KERNEL_MAX',
  'build_exclude', 'OBSOLETE_BY', 'MAKE', 'MAKE_MATCH',
  'PATCH', 'PATCH_MATCH', 'patch_array',
  'BUILT_MODULE_NAME', 'built_module_name', 'BUILT_MODULE_LOCATION', 'built_module_location',
  'DEST_MODULE_NAME', 'dest_module_name', 'DEST_MODULE_LOCATION', 'dest_module_location',
  'STRIP', 'strip', 'AUTOINSTALL', 'NO_WEAK_MODULES',
  'SIGN_FILE', 'MOK_SIGNING_KEY', 'MOK_CERTIFICATE',
  'REMAKE_INITRD', 'MODULES_CONF', 'MODULES_CONF_OBSOLETES',
  'MODULES_CONF_ALIAS_TYPE', 'MODULES_CONF_OBSOLETE_ONLY',
];

/** Deprecated since DKMS 2.8.8; still read, only warned about. */
export const DEPRECATED_CONF_VARIABLES: readonly string[] = [
  'REMAKE_INITRD', 'MODULES_CONF', 'MODULES_CONF_OBSOLETES',
  'MODULES_CONF_ALIAS_TYPE', 'MODULES_CONF_OBSOLETE_ONLY',
];

/** framework.conf names (3.0.10's list plus the later additions; docs/dkms-compat.md). */
export const FRAMEWORK_VARIABLES: readonly string[] = [
  'source_tree', 'dkms_tree', 'install_tree', 'tmp_location',
  'verbose', 'symlink_modules', 'autoinstall_all_kernels', 'modprobe_on_install',
  'sign_file', 'mok_signing_key', 'mok_certificate', 'try_sign_modules',
  'parallel_jobs', 'compress_gzip_opts', 'compress_xz_opts', 'compress_zstd_opts',
  'build_environment', 'post_transaction',
];
