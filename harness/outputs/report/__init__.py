"""`harness report`: one self-contained HTML page per run, a baseline beside it.

The page answers "did it get slower, where, and why" in twelve sections (verdict,
run facts, endpoints, latency over time, distribution and shift function, throughput
and errors, caches, ElevenLabs, database, where the time went, correctness, gate
checks), opens offline from a CI artifact (uPlot and all data inlined) and carries the
run's data, interval logs included, so it can be re-analysed.

* `inputs`: the edge: run directory + baseline -> `ReportInputs`; `write_report`.
* `prepare`, `series`, `distribution`, `server`: pure, inputs -> plain data per section;
  `sparse`: interval-log histograms to their non-zero buckets, fast and exact.
* `render`: the context, the embedded data, jinja2 -> HTML.

`write_report(run_dir, baseline=None, out=None)` is what the end of `harness run`
calls; a later `--compare`/`--history`/bench page reuses the section functions and
`render.extract_charts`/`encode_payload` with inputs of its own.
"""

from harness.outputs.report.inputs import REPORT_FILE, ReportInputs, Side, load_inputs, write_report
from harness.outputs.report.render import decode_payload, render_report

__all__ = ["REPORT_FILE", "ReportInputs", "Side", "decode_payload", "load_inputs",
           "render_report", "write_report"]
