/* log.c - see log.h. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static vds_log_fn sink;
static __thread struct vds_log_scope scope;
static __thread bool scoped;

void vds_log_to(vds_log_fn fn)
{
	sink = fn;
}

void vds_log_scope_set(const struct vds_log_scope *s)
{
	scoped = s != NULL;
	if (s)
		scope = *s;
}

const struct vds_log_scope *vds_log_scope(void)
{
	return scoped ? &scope : NULL;
}

#define SELF	"vdsfs: "

void vds_log_format(char *buf, size_t len, const char *fmt, va_list ap)
{
	const struct vds_log_scope *s = vds_log_scope();
	char msg[2048];
	const char *m = msg;
	size_t n;

	if (!len)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!strncmp(m, SELF, strlen(SELF)))
		m += strlen(SELF);
	n = strlen(m);
	while (n && m[n - 1] == '\n')
		n--;
	if (s && s->migration)
		snprintf(buf, len, "migration %" PRIu64 " (%s, %s -> %s): %.*s", s->migration,
			 s->path ? s->path : "?", s->datastore ? s->datastore : "?",
			 s->to ? s->to : "?", (int)n, m);
	else if (s && s->datastore)
		snprintf(buf, len, "datastore %s: %.*s", s->datastore, (int)n, m);
	else
		snprintf(buf, len, "%.*s", (int)n, m);
}

/* With no sink: stderr. */
static void to_stderr(const char *fmt, va_list ap)
{
	char line[2560];

	vds_log_format(line, sizeof(line), fmt, ap);
	fprintf(stderr, SELF "%s\n", line);
}

void vds_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (sink)
		sink(prio, fmt, ap);
	else
		to_stderr(fmt, ap);
	va_end(ap);
}
