/* libFuzzer target: control requests as they arrive on the socket, one line each,
 * handled by the real dispatcher against a daemon with no datastores and a live
 * scheduler. Every input must produce one JSON reply and nothing else. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "mig.h"
#include "ns.h"
#include "store.h"

static struct control *ctl;

static struct control *fuzz_control(void)
{
	struct store *s = calloc(1, sizeof(*s));
	struct ns *ns = calloc(1, sizeof(*ns));
	struct control *c = calloc(1, sizeof(*c));
	struct migs *g;

	if (!s || !ns || !c)
		abort();
	s->create_named = -1;
	ns_init(ns, s);
	if (migs_new(s, ns, &g) || migs_start(g))
		abort();
	control_init(c, s, g);
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1), *out;
	json_object *o;

	if (!ctl)
		ctl = fuzz_control();
	memcpy(line, data, size);
	line[size] = 0;
	out = control_handle(ctl, line);
	o = out ? json_tokener_parse(out) : NULL;
	if (!o || !json_object_is_type(o, json_type_object))
		abort();	/* every request gets a JSON object back */
	json_object_put(o);
	free(out);
	free(line);
	return 0;
}
