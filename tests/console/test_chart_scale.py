"""The job page's chart at 100,000 points: the time to take them in and draw them, reported, not asserted.

The same feed at 1,000 points, in the same run, is the baseline the figures are compared with.
The chart module is the page's own (imported in the signed-in console, under its Content-Security-Policy).
Timings depend on the machine; the test asserts only that every point is held and drawn.
"""

from __future__ import annotations

import json

import pytest
from playwright.async_api import expect

from tests.console.conftest import Console

POINTS = 100_000
LIVE_FRAMES = 60
STEPS_PER_FRAME = 10

FEED = """
async ({ points, liveFrames, stepsPerFrame }) => {
  const { MetricChart } = await import('/console/js/chart.js');
  const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
  const loss = (step) => 2 * Math.exp(-step / (points / 3)) + 0.02 * Math.random();
  const sorted = (values) => values.slice().sort((a, b) => a - b);
  const median = (values) => sorted(values)[Math.floor(values.length / 2)];

  // One chart fed `count` steps (a validation point every 100), then live steps a few per frame.
  const run = async (id, count) => {
    const box = document.createElement('div');
    box.id = id;
    document.querySelector('main').append(box);
    const chart = new MetricChart(box, {
      label: `${count} steps`, yLabel: 'loss',
      series: [
        { key: 'train_loss', label: 'Training loss', color: '#2563eb' },
        { key: 'valid_loss', label: 'Validation loss', color: '#ea580c', sparse: true },
      ],
    });
    await frame();
    const started = performance.now();
    for (let step = 1; step <= count; step += 1) {
      const values = { train_loss: loss(step) };
      if (step % 100 === 0) values.valid_loss = loss(step) + 0.1;
      chart.add(step, values);
    }
    const ingested = performance.now();
    await frame();
    await frame();
    const result = { ingest_ms: ingested - started, first_draw_ms: chart.lastDrawMilliseconds,
                     first_shown_ms: performance.now() - started };
    const draws = [];
    let step = count;
    for (let index = 0; index < liveFrames; index += 1) {
      for (let k = 0; k < stepsPerFrame; k += 1) { step += 1; chart.add(step, { train_loss: loss(step) }); }
      await frame();
      await frame();
      draws.push(chart.lastDrawMilliseconds);
    }
    return { ...result, live_redraw_median_ms: median(draws), live_redraw_max_ms: Math.max(...draws),
             held: Number(box.dataset.points), canvas_width: box.querySelector('canvas').width };
  };
  const baseline = await run('baseline-chart', points / 100);
  const scaled = await run('scale-chart', points);
  return { baseline, scaled };
}
"""


@pytest.mark.slow
async def test_chart_holds_and_draws_100k_points(console: Console, make_user, capsys) -> None:  # type: ignore[no-untyped-def]
    user = await make_user("chart@acme.example.com")
    await console.sign_in(user.key)
    figures = await console.page.evaluate(FEED, {"points": POINTS, "liveFrames": LIVE_FRAMES,
                                                 "stepsPerFrame": STEPS_PER_FRAME})  # fmt: skip
    live = LIVE_FRAMES * STEPS_PER_FRAME
    assert figures["scaled"]["held"] == POINTS + POINTS // 100 + live
    assert figures["baseline"]["held"] == POINTS // 100 + POINTS // 10_000 + live
    assert figures["scaled"]["first_draw_ms"] is not None and figures["scaled"]["canvas_width"] > 0
    await expect(console.page.locator("#scale-chart")).to_have_attribute("data-last-step", str(POINTS + live))
    await console.page.locator("#scale-chart").scroll_into_view_if_needed()
    await console.page.locator("#scale-chart").screenshot(path=console.shots / "chart-100k.png")
    ratios = {key: round(figures["scaled"][key] / max(figures["baseline"][key], 0.1), 1)
              for key in ("ingest_ms", "first_draw_ms", "live_redraw_median_ms")}  # fmt: skip
    with capsys.disabled():
        print(f"\nconsole chart, {POINTS} points vs {POINTS // 100}: {json.dumps({**figures, 'ratios': ratios})}")
    console.assert_no_script_errors()
