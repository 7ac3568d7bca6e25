/* --plot FILE.svg on train and sim: the JSON Lines records the command
 * writes are collected through the writer's tap and drawn by gnuplot at the
 * end — the same figures a user could plot from the stream. */
#ifndef MSBALLOON_PLOT_H
#define MSBALLOON_PLOT_H

#include "error.h"
#include "jsonl.h"

struct plot;

/* Checks up front (before a long run) that gnuplot is installed and that the
 * SVG's directory is writable; then taps W. */
struct plot *plot_open(const char *svg_path, struct jsonl_writer *w, struct ms_err *err);
/* Draws what was collected into the SVG (written atomically). */
int plot_render(struct plot *p, struct ms_err *err);
void plot_free(struct plot *p);

#endif
