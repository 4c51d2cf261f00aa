/* test_crash.c - flush, then SIGKILL.
 *
 * A child process writes round after round (unaligned writes and discards, each
 * round in its own region), flushes after each round and then reports the round
 * number through a pipe; after the last reported round it keeps writing without
 * flushing.  The parent kills it with SIGKILL right after reading round K, reopens
 * the file and replays rounds 0..K on an in-memory copy of the base: every byte
 * flushed in those rounds must be there, the file must open and check clean.
 * Rounds after K were never promised and are not asserted.  Which round the child
 * is in when the signal lands does not change what is asserted.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "helpers.h"

#define REGION (64u * 1024)
#define ROUNDS 24
#define SIZE ((uint64_t)REGION * (ROUNDS + 8))

/* The operations of round r, applied to the overlay or (ov == NULL) to the model. */
static void round_ops(struct overlay *ov, uint8_t *model, unsigned r)
{
	uint64_t rng = r * 104729ull + 17;
	uint8_t buf[9000];

	for (int i = 0; i < 12; i++) {
		uint64_t off = (uint64_t)r * REGION + rng_next(&rng) % (REGION - sizeof(buf));
		size_t len = 1 + rng_next(&rng) % sizeof(buf);
		int discard = rng_next(&rng) % 5 == 0;

		if (discard && ov)
			cr_assert_eq(overlay_discard(ov, off, len), 0);
		else if (discard)
			memset(model + off, 0, len);
		rng_fill(&rng, buf, len);
		if (discard)
			continue;
		if (ov && overlay_write(ov, buf, len, off) != (ssize_t)len)
			_exit(3);
		if (!ov)
			memcpy(model + off, buf, len);
	}
}

static void child(int base, int diff, int out)
{
	struct overlay *ov = ov_reopen(base, diff, "crash");

	for (unsigned r = 0; r < ROUNDS; r++) {
		round_ops(ov, NULL, r);
		if (overlay_flush(ov) || write(out, &r, sizeof(r)) != sizeof(r))
			_exit(4);
	}
	for (unsigned r = ROUNDS;; r = ROUNDS + (r + 1) % 8)	/* unflushed from here on */
		round_ops(ov, NULL, r);
}

static void kill_after(unsigned k)
{
	struct tdir d;
	char bp[300], dp[300];
	uint8_t *model;
	int base, diff, p[2], status;
	unsigned got = ~0u;
	pid_t pid;

	tdir_new(&d);
	tdir_file(&d, "base", bp, sizeof(bp));
	tdir_file(&d, "diff", dp, sizeof(dp));
	base = make_base(bp, SIZE, 11, &model);
	diff = open_new(dp);
	overlay_close(ov_new(base, diff, 4096, "crash"));
	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		child(base, diff, p[1]);
	}
	close(p[1]);
	while (got != k)
		cr_assert_eq(read(p[0], &got, sizeof(got)), (ssize_t)sizeof(got), "child died early");
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status), "child was not killed");
	close(p[0]);

	for (unsigned r = 0; r <= k; r++)
		round_ops(NULL, model, r);
	struct overlay *ov = ov_reopen(base, diff, "crash");
	uint8_t *now = malloc(SIZE);

	cr_assert_eq(overlay_read(ov, now, SIZE, 0), (ssize_t)SIZE);
	for (uint64_t i = 0; i < (uint64_t)(k + 1) * REGION; i++)
		cr_assert_eq(now[i], model[i], "flushed byte %llu lost after SIGKILL at round %u",
			     (unsigned long long)i, k);
	cr_assert_eq(overlay_check(diff, NULL, NULL), 0);
	overlay_close(ov);
	close(base);
	close(diff);
	tdir_rm(&d);
	free(model);
	free(now);
}

Test(crash, flush_then_sigkill_round_0) { kill_after(0); }
Test(crash, flush_then_sigkill_round_5) { kill_after(5); }
Test(crash, flush_then_sigkill_round_17) { kill_after(17); }

/* A machine crash after a commit wrote its map pages but before its header landed:
 * emulated by putting back the header slot the commit overwrote.  The file must
 * open at the previous generation with exactly the contents flushed then (the
 * newer writes went to blocks that were still in the base, so nothing of the older
 * state was overwritten in place), and check must find it healthy. */
Test(crash, commit_cut_before_its_header)
{
	struct tdir d;
	char bp[300], dp[300];
	uint8_t *orig, *gen2, *slot1 = malloc(65536), buf[30000];
	int base, diff;
	struct overlay *ov;

	tdir_new(&d);
	tdir_file(&d, "base", bp, sizeof(bp));
	tdir_file(&d, "diff", dp, sizeof(dp));
	base = make_base(bp, 4 << 20, 12, &orig);
	diff = open_new(dp);
	ov = ov_new(base, diff, 4096, NULL);
	memset(buf, 0x11, sizeof(buf));
	cr_assert_eq(overlay_write(ov, buf, sizeof(buf), 12345), (ssize_t)sizeof(buf));
	cr_assert_eq(overlay_discard(ov, 1 << 20, 40000), 0);
	cr_assert_eq(overlay_flush(ov), 0);	/* generation 2, in slot 0 */
	gen2 = malloc(4 << 20);
	cr_assert_eq(overlay_read(ov, gen2, 4 << 20, 0), 4 << 20);
	cr_assert_eq(pread(diff, slot1, 65536, 65536), 65536);	/* generation 1 */

	memset(buf, 0x22, sizeof(buf));
	for (uint64_t off = 2 << 20; off < (3 << 20); off += 100000)
		cr_assert_eq(overlay_write(ov, buf, sizeof(buf), off), (ssize_t)sizeof(buf));
	cr_assert_eq(overlay_flush(ov), 0);	/* generation 3, in slot 1 */
	overlay_close(ov);
	cr_assert_eq(pwrite(diff, slot1, 65536, 65536), 65536);	/* "never landed" */

	ov = ov_reopen(base, diff, NULL);
	expect_contents(ov, gen2, 4 << 20);
	overlay_close(ov);
	cr_assert_eq(overlay_check(diff, NULL, NULL), 0);
	close(base);
	close(diff);
	tdir_rm(&d);
	free(orig);
	free(gen2);
	free(slot1);
}
