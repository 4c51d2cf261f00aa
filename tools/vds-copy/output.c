/* output.c -- what vds-copy prints for each scheduler event.
 *
 * Three modes: --json writes every event as one JSON object per line on
 * stdout (flushed, so a reader sees it at once: tests wait on these lines);
 * on a terminal a status line of progress bars is redrawn in place on
 * stderr, with a permanent line per finished job; otherwise only one line
 * per start and end. Everything here runs on the scheduler thread, which is
 * the only writer of the counters in struct vc. It also removes the partial
 * copies of failed jobs (main.c says why here).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vds-copy.h"

static void print_json(struct vc *vc, const struct sched_event *ev, const struct vc_job *j)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "seq", json_object_new_int64((int64_t)ev->seq));
	json_object_object_add(o, "ts", json_object_new_double((double)ev->ts_ns / 1e9));
	json_object_object_add(o, "event", json_object_new_string(sched_event_name(ev->type)));
	json_object_object_add(o, "job", json_object_new_int64((int64_t)ev->job));
	json_object_object_add(o, "name", json_object_new_string(ev->name));
	json_object_object_add(o, "src", json_object_new_string(vc->ds[j->src].name));
	json_object_object_add(o, "dst", json_object_new_string(vc->ds[j->dst].name));
	if (ev->type == SCHED_EV_PROGRESS || ev->type == SCHED_EV_FINISHED) {
		json_object_object_add(o, "done", json_object_new_int64((int64_t)ev->done));
		json_object_object_add(o, "total", json_object_new_int64((int64_t)ev->total));
		json_object_object_add(o, "rate", json_object_new_double(ev->rate));
		json_object_object_add(o, "checkpointed", json_object_new_int64((int64_t)ev->checkpointed));
		json_object_object_add(o, "resumed_from", json_object_new_int64((int64_t)ev->resumed_from));
		json_object_object_add(o, "direct", json_object_new_boolean(ev->flags & COPIER_USED_DIRECT));
	}
	if (ev->status) {
		json_object_object_add(o, "errno", json_object_new_int(-ev->status));
		json_object_object_add(o, "error", json_object_new_string(ev->msg));
	}
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
}

static double mib(uint64_t b) { return (double)b / 1048576.0; }

static unsigned term_width(void)
{
	struct winsize ws;

	return ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 ? ws.ws_col : 80;
}

/* One line, redrawn in place: "[=====     ]  48% NAME 123 MiB/s" per job. */
static void draw_bars(struct vc *vc)
{
	char line[1024];
	size_t n = 0, w = term_width() - 1;
	unsigned k, pct, fill;

	for (unsigned i = 0; i < vc->njobs && n < sizeof(line) - 128; i++) {
		struct vc_job *j = &vc->jobs[i];

		if (!j->running)
			continue;
		pct = j->total ? (unsigned)(j->done * 100 / j->total) : 0;
		fill = pct / 10;
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s[", n ? " " : "");
		for (k = 0; k < 10; k++)
			line[n++] = k < fill ? '=' : ' ';
		n += (size_t)snprintf(line + n, sizeof(line) - n, "]%3u%% %.24s %.0f MiB/s",
				      pct, j->label, j->rate / 1048576.0);
	}
	line[n < w ? n : w] = 0;
	fprintf(stderr, "\r\033[K%s", line);
}

static void print_human(struct vc *vc, const struct sched_event *ev, struct vc_job *j)
{
	double secs;

	if (vc->tty)
		fputs("\r\033[K", stderr);
	switch (ev->type) {
	case SCHED_EV_STARTED:
		if (!vc->quiet && !vc->tty)
			fprintf(stderr, "started  %s -> %s\n", j->label, vc->ds[j->dst].name);
		break;
	case SCHED_EV_FINISHED:
		secs = (double)(ev->ts_ns - vc->t0_ns) / 1e9;
		if (!vc->quiet)
			fprintf(stderr, "finished %s -> %s: %.1f MiB of data%s, %.1f s after start\n",
				j->label, vc->ds[j->dst].name, mib(ev->total),
				ev->resumed_from ? " (resumed)" : "", secs);
		break;
	case SCHED_EV_FAILED:
		fprintf(stderr, "FAILED %s -> %s: %s\n", j->label, vc->ds[j->dst].name, ev->msg);
		break;
	case SCHED_EV_CANCELLED:
		fprintf(stderr, "cancelled %s -> %s%s\n", j->label, vc->ds[j->dst].name,
			j->started ? " (partial copy kept: run again to resume)" : "");
		break;
	default:
		break;
	}
	if (vc->tty && !vc->quiet)
		draw_bars(vc);
}

void vc_on_event(void *arg, const struct sched_event *ev)
{
	struct vc *vc = arg;
	/* ev->user, not the id: events may arrive before submit returned it */
	struct vc_job *j = ev->user;

	j->running = ev->type == SCHED_EV_STARTED || ev->type == SCHED_EV_PROGRESS;
	j->started |= ev->type == SCHED_EV_STARTED;
	/* A failed copy leaves nothing; a refused one (never started) must not
	 * remove a partial copy an earlier, interrupted run left to resume. */
	if (ev->type == SCHED_EV_FAILED && j->started && !vc->keep_failed)
		copier_discard(j->dst_dirfd, j->part_base);
	if (ev->type == SCHED_EV_PROGRESS || ev->type == SCHED_EV_FINISHED) {
		j->done = ev->done;
		j->total = ev->total;
		j->rate = ev->rate;
	}
	vc->finished += ev->type == SCHED_EV_FINISHED;
	vc->failed += ev->type == SCHED_EV_FAILED;
	vc->cancelled += ev->type == SCHED_EV_CANCELLED;
	if (vc->json)
		print_json(vc, ev, j);
	else
		print_human(vc, ev, j);
}

void vc_print_summary(struct vc *vc)
{
	if (vc->tty && !vc->json)
		fputs("\r\033[K", stderr);
	if (!vc->json && !vc->quiet)
		fprintf(stderr, "%u copied, %u failed, %u cancelled in %.1f s\n", vc->finished,
			vc->failed, vc->cancelled, (double)(vc_now_ns() - vc->t0_ns) / 1e9);
}
