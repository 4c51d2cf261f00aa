/* vdsctl.h - what vdsctl.c and dscmd.c share: the connection to the daemon and the
 * helpers that read its replies. */
#ifndef VDSCTL_H
#define VDSCTL_H

#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct ctl {
	char mount[PATH_MAX];	/* canonical mountpoint, "" if only -s given */
	char *typed;		/* -m as typed if it reaches the mount another way, or NULL */
	char *cwd;		/* the current directory, NULL if getcwd failed */
	char sock[108];
	int fd;
	FILE *in;
};

/* "vdsctl: " and the formatted line on stderr; returns code, so that a refusal is
 * one statement: return die(2, "...", ...). */
int die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One request, one reply; NULL (with a message printed) if the daemon is gone. */
json_object *call(struct ctl *c, json_object *req);
/* ok: true; else the daemon's error printed (reply_ok) or not (reply_ok_quiet). */
bool reply_ok(json_object *rep);
bool reply_ok_quiet(json_object *rep);
/* Free o and return 1 (an error exit that holds nothing). */
int put_fail(json_object *o);
/* 0 for a good reply (printed with print), 1 otherwise; frees rep. */
int finish_reply(json_object *rep, bool print);
const char *human(double b, char *buf, size_t len);
int64_t geti(json_object *o, const char *k);
double getd(json_object *o, const char *k);
const char *gets_(json_object *o, const char *k);
bool terminal_phase(const char *p);
/* The status of migration id (0: all), an array the caller puts; NULL on error. */
json_object *status_of(struct ctl *c, uint64_t id);
void sleep_ms(int ms);
/* Progress per id until every one is over (quiet: no output; total: a line for
 * them all as well). 0 only if every one switched. */
int wait_for(struct ctl *c, json_object *ids, bool quiet, bool total);

/* dscmd.c: datastore add|remove|maintenance, evacuate, rebalance. */
int cmd_datastore(struct ctl *c, int argc, char **argv);
int cmd_evacuate(struct ctl *c, int argc, char **argv);
int cmd_rebalance(struct ctl *c, int argc, char **argv);

#endif
