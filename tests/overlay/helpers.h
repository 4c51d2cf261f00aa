/* helpers.h - shared fixtures for the overlay tests: temporary directories, base
 * images with known pseudo-random contents, and running vds-diff. */
#ifndef OVERLAY_TEST_HELPERS_H
#define OVERLAY_TEST_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "overlay.h"

struct tdir {
	char path[256];
};

void tdir_new(struct tdir *d);
void tdir_rm(struct tdir *d);
/* d->path + "/" + name into a static-free buffer owned by the caller */
void tdir_file(const struct tdir *d, const char *name, char *out, size_t len);

uint64_t rng_next(uint64_t *s);
void rng_fill(uint64_t *s, void *buf, size_t len);

/* A base image of `size` pseudo-random bytes from `seed`; returns an O_RDWR fd and,
 * if content is not NULL, a malloc'd copy of the bytes. */
int make_base(const char *path, uint64_t size, uint64_t seed, uint8_t **content);
int open_new(const char *path);	/* O_RDWR|O_CREAT|O_EXCL */
int open_rw(const char *path);

/* Create an overlay over base_fd; asserts success. */
struct overlay *ov_new(int base_fd, int diff_fd, uint32_t bs, const char *uuid);
struct overlay *ov_reopen(int base_fd, int diff_fd, const char *uuid);

/* Assert that the overlay reads exactly `want` (size bytes). */
void expect_contents(struct overlay *ov, const uint8_t *want, uint64_t size);
/* Assert that a file holds exactly `want`. */
void expect_file(int fd, const uint8_t *want, uint64_t size);

/* Run vds-diff (path from $VDS_DIFF) with a NULL-terminated argv; returns its exit
 * status, or -1 if it could not run. */
int run_vds_diff(const char *arg0, ...);

#endif
