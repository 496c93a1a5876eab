"""`harness report`: one self-contained HTML page per run, a baseline beside it; and the
compare page, B against A (`--compare`, and the page every `harness ab` job ends with).

The page answers "did it get slower, where, and why" in twelve sections (verdict,
run facts, endpoints, latency over time, distribution and shift function, throughput
and errors, caches, ElevenLabs, database, where the time went, correctness, gate
checks), opens offline from a CI artifact (uPlot and all data inlined) and carries the
run's data, interval logs included, so it can be re-analysed.

* `inputs`: the edge: run directory + baseline -> `ReportInputs`; `write_report`.
* `comparison`: the edge of the compare page: two runs, run sets (`JOB:A`) or one ab
  job -> `ReportInputs` with A as the baseline, B as the current side; `write_compare`.
* `prepare`, `series`, `distribution`, `server`: pure, inputs -> plain data per section,
  for one page or the other (a side may hold several runs: `pooled`);
  `sparse`: interval-log histograms to their non-zero buckets, fast and exact.
* `render`: the context, the embedded data, jinja2 -> HTML (`templates/sections.html.j2`
  holds each section's markup, `report.html.j2` and `compare.html.j2` order them);
  `compare_page`: the compare page's own sections (rounds, runs) and its rendering.

`write_report(run_dir, baseline=None, out=None)` is what the end of `harness run`
calls, `write_compare([job_dir], out, output)` what the end of `harness ab` calls; a
later `--history`/bench page reuses the section functions and
`render.extract_charts`/`encode_payload`/`render_page` with inputs of its own.
"""

from harness.outputs.report.inputs import REPORT_FILE, ReportInputs, Side, load_inputs, write_report
from harness.outputs.report.render import decode_payload, render_report

__all__ = ["REPORT_FILE", "ReportInputs", "Side", "decode_payload", "load_inputs",
           "render_report", "write_report"]
