/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a device already holds, by libblkid's probing (the library mkfs and
 * wipefs use): filesystems, partition tables, LVM/RAID/bcache and other
 * signatures.  Only files and block devices (the file driver) can be probed.
 */
#include <blkid/blkid.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "dev/device.h"
#include "format/probe.h"

/* Append " (label L, UUID U)" for the probed values that are present. */
static void add_values(blkid_probe pr, const char *label_key, const char *uuid_key, char *buf,
		       size_t len, size_t n)
{
	const char *keys[] = { label_key, uuid_key }, *what[] = { "label", "UUID" }, *v;
	unsigned i, k = 0;

	for (i = 0; i < 2; i++) {
		v = NULL;
		if (!keys[i] || n >= len || blkid_probe_lookup_value(pr, keys[i], &v, NULL) || !v || !v[0])
			continue;
		n += (size_t)snprintf(buf + n, len - n, "%s%s %s", k++ ? ", " : " (", what[i], v);
	}
	if (k && n < len)
		snprintf(buf + n, len - n, ")");
}

int bc_probe_signature(const struct bc_dev *dev, char *buf, size_t len)
{
	const char *path = dev->path;
	blkid_probe pr;
	const char *type = NULL, *usage = NULL;
	struct stat st;
	size_t n = 0;
	int ret;

	buf[0] = 0;
	/* Only a path the file driver opened names what it holds; another
	 * driver's "path" (nbd://, a host's own device) is not a file. */
	if (dev->ops != &bc_dev_file_ops || stat(path, &st) || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return 0; /* not probed (e.g. nbd://) */
	pr = blkid_new_probe_from_filename(path);
	if (!pr)
		return -errno ? -errno : -EIO;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE |
					  BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID);
	blkid_probe_enable_partitions(pr, 1);
	ret = blkid_do_safeprobe(pr);
	if (ret == 0) {
		if (blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0) {
			blkid_probe_lookup_value(pr, "USAGE", &usage, NULL);
			n = (size_t)snprintf(buf, len, "%s %s", type,
					     usage && !strcmp(usage, "filesystem") ? "filesystem" :
					     usage && usage[0] ? usage : "signature");
			add_values(pr, "LABEL", "UUID", buf, len, n);
		} else if (blkid_probe_lookup_value(pr, "PTTYPE", &type, NULL) == 0) {
			n = (size_t)snprintf(buf, len, "%s partition table", type);
			add_values(pr, NULL, "PTUUID", buf, len, n);
		} else {
			snprintf(buf, len, "an unnamed signature");
		}
		ret = 1;
	} else if (ret == -2) {
		snprintf(buf, len, "several conflicting signatures");
		ret = 1;
	} else {
		ret = 0; /* 1: nothing found; -1: probing failed (treated as nothing found) */
	}
	blkid_free_probe(pr);
	return ret;
}
