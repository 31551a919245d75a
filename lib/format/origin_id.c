/* SPDX-License-Identifier: BSD-3-Clause */
/* The identity of an origin device: see origin_id.h. */
#include <blkid/blkid.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "format/origin_id.h"

static void copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

/* First line of a sysfs attribute, without trailing white space; "" if none. */
static void read_attr(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	buf[0] = 0;
	if (!f)
		return;
	if (!fgets(buf, (int)len, f))
		buf[0] = 0;
	fclose(f);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = 0;
}

/*
 * A stable hardware name of block device @rdev: the WWN, else the serial
 * number (of the whole disk, plus the partition number for a partition);
 * a loop device is named by its backing file.
 */
static void bdev_serial(dev_t rdev, char *out, size_t len)
{
	static const char *const attrs[] = { "device/wwid", "wwid", "device/serial", "serial" };
	char sys[128], p[192], part[16], val[128] = "";
	size_t i;

	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u", major(rdev), minor(rdev));
	snprintf(p, sizeof(p), "%s/loop/backing_file", sys);
	read_attr(p, val, sizeof(val));
	if (val[0]) {
		snprintf(out, len, "loop:%s", val);
		return;
	}
	snprintf(p, sizeof(p), "%s/partition", sys);
	read_attr(p, part, sizeof(part));
	for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]) && !val[0]; i++) {
		/* A partition's own directory has no device/: ask its disk. */
		snprintf(p, sizeof(p), "%s/%s%s", sys, part[0] ? "../" : "", attrs[i]);
		read_attr(p, val, sizeof(val));
	}
	out[0] = 0;
	if (val[0])
		snprintf(out, len, "%s%s%s", val, part[0] ? "-part" : "", part);
}

/* The partition UUID of the block device at @path, if it is a partition. */
static void bdev_partuuid(const char *path, char *out, size_t len)
{
	blkid_probe pr = blkid_new_probe_from_filename(path);
	const char *v = NULL;

	out[0] = 0;
	if (!pr)
		return;
	blkid_probe_enable_superblocks(pr, 0);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
	if (blkid_do_safeprobe(pr) == 0 && blkid_probe_lookup_value(pr, "PART_ENTRY_UUID", &v, NULL) == 0)
		copy_str(out, len, v);
	blkid_free_probe(pr);
}

/* The first (in name order) /dev/disk/by-id link that resolves to @real. */
static void bdev_byid(const char *real, char *out, size_t len)
{
	struct dirent **names = NULL;
	int n, i;

	out[0] = 0;
	n = scandir("/dev/disk/by-id", &names, NULL, alphasort);
	for (i = 0; i < n; i++) {
		char link[PATH_MAX], *r;

		snprintf(link, sizeof(link), "/dev/disk/by-id/%s", names[i]->d_name);
		r = names[i]->d_name[0] != '.' ? realpath(link, NULL) : NULL;
		if (r && !out[0] && !strcmp(r, real))
			copy_str(out, len, names[i]->d_name);
		free(r);
		free(names[i]);
	}
	free(names);
}

void bc_origin_id_get(const struct bc_dev *dev, struct bc_origin_id *id)
{
	struct stat st;
	char *real;

	memset(id, 0, sizeof(*id));
	if (dev->ops != &bc_dev_file_ops || dev->fd < 0 || fstat(dev->fd, &st)) {
		id->kind = dev->ops == &bc_dev_nbd_ops ? BC_ORIGIN_NETWORK : BC_ORIGIN_OTHER;
#ifdef BC_HAVE_RBD
		if (dev->ops == &bc_dev_rbd_ops)
			id->kind = BC_ORIGIN_NETWORK;
#endif
		copy_str(id->path, sizeof(id->path), dev->path);
		/* A driver's stable name of the volume (rbd: cluster, pool, image ids). */
		if (bc_dev_identity(dev, id->serial, sizeof(id->serial)) < 0)
			id->serial[0] = 0;
		return;
	}
	real = realpath(dev->path, NULL);
	copy_str(id->path, sizeof(id->path), real ? real : dev->path);
	if (S_ISBLK(st.st_mode)) {
		id->kind = BC_ORIGIN_BDEV;
		id->inode = st.st_rdev;
		bdev_serial(st.st_rdev, id->serial, sizeof(id->serial));
		bdev_partuuid(id->path, id->partuuid, sizeof(id->partuuid));
		bdev_byid(id->path, id->byid, sizeof(id->byid));
	} else {
		id->kind = BC_ORIGIN_FILE;
		id->inode = st.st_ino;
	}
	free(real);
}

void bc_origin_id_store(struct bc_sb_disk *sb, const struct bc_origin_id *id)
{
	sb->origin_kind = id->kind;
	sb->origin_inode = id->inode;
	copy_str(sb->origin_path, sizeof(sb->origin_path), id->path);
	copy_str(sb->origin_serial, sizeof(sb->origin_serial), id->serial);
	copy_str(sb->origin_partuuid, sizeof(sb->origin_partuuid), id->partuuid);
	copy_str(sb->origin_byid, sizeof(sb->origin_byid), id->byid);
}

/* A fixed-size on-disk string, terminated even if the field is full. */
static void load_str(char *dst, size_t dlen, const char *src, size_t slen)
{
	size_t n = strnlen(src, slen);

	if (n >= dlen)
		n = dlen - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

void bc_origin_id_load(const struct bc_sb_disk *sb, struct bc_origin_id *id)
{
	memset(id, 0, sizeof(*id));
	id->kind = sb->origin_kind;
	id->inode = sb->origin_inode;
	load_str(id->path, sizeof(id->path), sb->origin_path, sizeof(sb->origin_path));
	load_str(id->serial, sizeof(id->serial), sb->origin_serial, sizeof(sb->origin_serial));
	load_str(id->partuuid, sizeof(id->partuuid), sb->origin_partuuid, sizeof(sb->origin_partuuid));
	load_str(id->byid, sizeof(id->byid), sb->origin_byid, sizeof(sb->origin_byid));
}

static const char *kind_name(uint32_t kind)
{
	switch (kind) {
	case BC_ORIGIN_FILE: return "file";
	case BC_ORIGIN_BDEV: return "block device";
	case BC_ORIGIN_NETWORK: return "network device";
	case BC_ORIGIN_OTHER: return "device";
	default: return "unknown device";
	}
}

void bc_origin_id_describe(const struct bc_origin_id *id, char *buf, size_t len)
{
	if (id->kind == BC_ORIGIN_FILE)
		snprintf(buf, len, "file %s, inode %llu", id->path, (unsigned long long)id->inode);
	else if (id->kind == BC_ORIGIN_BDEV)
		snprintf(buf, len, "block device %s, serial %s%s%s%s%s", id->path,
			 id->serial[0] ? id->serial : "unknown", id->partuuid[0] ? ", partition UUID " : "",
			 id->partuuid, id->byid[0] ? ", by-id " : "", id->byid);
	else
		snprintf(buf, len, "%s %s%s%s", kind_name(id->kind), id->path,
			 id->serial[0] ? ", " : "", id->serial);
}

static enum bc_origin_match renamed(const struct bc_origin_id *rec, const struct bc_origin_id *found,
				    const char *by, char *why, size_t len)
{
	if (!strcmp(rec->path, found->path))
		return BC_ORIGIN_SAME;
	snprintf(why, len, "the origin was recorded as %s and is now %s (same %s)", rec->path,
		 found->path, by);
	return BC_ORIGIN_RENAMED;
}

enum bc_origin_match bc_origin_id_match(const struct bc_origin_id *rec,
					const struct bc_origin_id *found, char *why, size_t len)
{
	if (rec->kind != found->kind) {
		snprintf(why, len, "it is a %s, but the cache belongs to a %s", kind_name(found->kind),
			 kind_name(rec->kind));
		return BC_ORIGIN_DIFFERENT;
	}
	if (rec->kind == BC_ORIGIN_BDEV) {
		/* Hardware names survive renumbering (sdb -> sdc); paths do not. */
		if (rec->serial[0] && found->serial[0]) {
			if (!strcmp(rec->serial, found->serial) &&
			    (!rec->partuuid[0] || !strcmp(rec->partuuid, found->partuuid)))
				return renamed(rec, found, "serial", why, len);
			snprintf(why, len, "its serial is %s%s%s, the cache belongs to serial %s%s%s",
				 found->serial, found->partuuid[0] ? ", partition UUID " : "",
				 found->partuuid, rec->serial, rec->partuuid[0] ? ", partition UUID " : "",
				 rec->partuuid);
			return BC_ORIGIN_DIFFERENT;
		}
		if (rec->partuuid[0]) {
			if (!strcmp(rec->partuuid, found->partuuid))
				return renamed(rec, found, "partition UUID", why, len);
			snprintf(why, len, "its partition UUID is %s, the cache belongs to partition "
				 "UUID %s", found->partuuid[0] ? found->partuuid : "(none)", rec->partuuid);
			return BC_ORIGIN_DIFFERENT;
		}
		if (rec->byid[0] && !strcmp(rec->byid, found->byid))
			return renamed(rec, found, "/dev/disk/by-id name", why, len);
	}
	if (rec->kind != BC_ORIGIN_BDEV && rec->serial[0] && found->serial[0]) {
		/* A volume's own ids (rbd: fsid, pool, image): they decide. */
		if (!strcmp(rec->serial, found->serial))
			return renamed(rec, found, "volume", why, len);
		snprintf(why, len, "it is %s, the cache belongs to %s", found->serial, rec->serial);
		return BC_ORIGIN_DIFFERENT;
	}
	if (strcmp(rec->path, found->path)) {
		snprintf(why, len, "its path is %s, the cache belongs to %s", found->path, rec->path);
		return BC_ORIGIN_DIFFERENT;
	}
	if (rec->kind == BC_ORIGIN_FILE && rec->inode != found->inode) {
		snprintf(why, len, "%s is another file now (inode %llu; the cache belongs to inode %llu: "
			 "was it replaced or restored from a copy?)", found->path,
			 (unsigned long long)found->inode, (unsigned long long)rec->inode);
		return BC_ORIGIN_DIFFERENT;
	}
	return BC_ORIGIN_SAME;
}
