/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Option haggling of the fixed newstyle handshake as a pure function: one
 * option (header + payload) in, the reply bytes and what to do next out.
 */
#ifndef BC_NBD_HANDSHAKE_H
#define BC_NBD_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest option payload read and interpreted; larger payloads of at most
 * BC_NBD_OPT_DISCARD_MAX bytes are skipped and answered with an error,
 * anything larger closes the connection. */
#define BC_NBD_OPT_MAX          (64u * 1024u)
#define BC_NBD_OPT_DISCARD_MAX  (1024u * 1024u)

/* An export a server offers.  A server offering several chains them
 * through @next in the order they are listed; the first one is the
 * default export, the one the empty name selects. */
struct bc_nbd_export {
	struct bc_nbd_export *next; /* the next export offered, NULL: none */
	const char *name;        /* canonical name, never NULL ("" allowed) */
	size_t name_len;
	const char *description; /* NULL: none */
	size_t description_len;
	uint64_t size;
	uint16_t tx_flags;
	uint32_t min_block;
	uint32_t pref_block;
	uint32_t max_block;
};

/* A growable byte buffer; a failed allocation sets @err and later
 * appends are ignored. */
struct bc_nbd_obuf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int err;
};

void bc_nbd_obuf_init(struct bc_nbd_obuf *b);
void bc_nbd_obuf_put(struct bc_nbd_obuf *b, const void *p, size_t n);
void bc_nbd_obuf_release(struct bc_nbd_obuf *b);

enum bc_nbd_opt_action {
	BC_NBD_OPT_CONTINUE = 0, /* send the reply, read the next option */
	BC_NBD_OPT_ENTER_TX,     /* send the reply, enter transmission phase */
	BC_NBD_OPT_ABORT,        /* send the reply, then close (soft disconnect) */
	BC_NBD_OPT_DROP,         /* close without sending anything further */
};

/*
 * Process option @opt whose payload is @data/@len against the exports
 * @exps (a list through ->next; NULL: none offered).  @data may be NULL when
 * the payload was larger than BC_NBD_OPT_MAX and has been skipped (@len is
 * then its announced length).  Appends the reply to @out.  Returns an
 * enum bc_nbd_opt_action, or -ENOMEM.  On BC_NBD_OPT_ENTER_TX, *@selected
 * (if not NULL) is the export the client chose.
 *
 * A name selects the export of exactly that name; the empty name, if no
 * export is called "", selects the first (default) export.
 */
int bc_nbd_opt_process_sel(const struct bc_nbd_export *exps, uint32_t opt, const uint8_t *data,
			   uint32_t len, bool no_zeroes, struct bc_nbd_obuf *out,
			   const struct bc_nbd_export **selected);
/* The same without reporting the export chosen. */
int bc_nbd_opt_process(const struct bc_nbd_export *exps, uint32_t opt, const uint8_t *data,
		       uint32_t len, bool no_zeroes, struct bc_nbd_obuf *out);
/* The export @name/@len selects among @exps, or NULL. */
const struct bc_nbd_export *bc_nbd_export_find(const struct bc_nbd_export *exps,
					       const char *name, size_t len);

#endif
