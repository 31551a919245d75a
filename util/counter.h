/* SPDX-License-Identifier: BSD-3-Clause */
/* Single-writer counters: one thread counts, any thread reads a value that
 * was true at some moment (no lock, no read-modify-write). */
#ifndef BC_UTIL_COUNTER_H
#define BC_UTIL_COUNTER_H

/* Add @delta to @field (the one writing thread). */
#define bc_counter_add(field, delta) \
	__atomic_store_n(&(field), (field) + (delta), __ATOMIC_RELAXED)
/* Read @field (any thread). */
#define bc_counter_read(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

#endif
