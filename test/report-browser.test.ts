/**
 * `swan report` in a real browser: headless Chromium (Debian's `chromium`, driven by the pinned
 * playwright-core) at 1280 px. The page renders, the heat-maps and the tensor table are there and
 * sized, the header stays in view while the table scrolls, a click on a header sorts the rows and
 * typing filters them. Skipped, saying why, only when no Chromium is installed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { swan } from './helpers/cli.js';
import { STORIES, tempDir } from './helpers/paths.js';

const CHROMIUM = [process.env.SWAN_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
const skip = CHROMIUM ? false : 'no Chromium (install it with `apt-get install -y chromium`; .ci/run does so as root), so the report is not checked in a browser';

const tmp = tempDir();
after(() => tmp.cleanup());

describe('swan report in headless Chromium at 1280 px', { skip }, () => {
  const out = join(tmp.dir, 'stories-budget');
  const html = join(tmp.dir, 'report.html');
  let browser: import('playwright-core').Browser;
  let page: import('playwright-core').Page;

  before(async () => {
    let r = swan(['quantize', STORIES, '-o', out, '--quiet', '--target-bpw', '6.5']);
    assert.equal(r.status, 0, r.stderr);
    r = swan(['report', out, '-o', html]);
    assert.equal(r.status, 0, r.stderr);
    const { chromium } = await import('playwright-core');
    // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    await page.goto(pathToFileURL(html).href);
    assert.deepEqual(errors, []);
  });
  after(async () => {
    await browser?.close();
  });

  test('renders: heat-maps and table present and sized, no page-wide horizontal scroll', async () => {
    for (const id of ['#map-format', '#map-score']) {
      const box = await page.locator(id).boundingBox();
      assert.ok(box && box.width >= 200 && box.height >= 100, `${id}: ${JSON.stringify(box)}`);
      assert.equal(await page.locator(`${id} rect.hm-cell`).count(), 35, `${id}: 5 layers × 7 modules`);
    }
    const table = await page.locator('#tensor-table').boundingBox();
    assert.ok(table && table.width >= 600 && table.height >= 200, JSON.stringify(table));
    const rows = await page.locator('#tensor-table tbody tr').count();
    const manifest = JSON.parse(readFileSync(join(out, 'swan-manifest.json'), 'utf8'));
    assert.equal(rows, manifest.total_tensors);
    const pageWidth = await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth as number);
    assert.ok(pageWidth <= 1280, `page is ${pageWidth} px wide`);
    // The table's own scroll box fits the window, so its scrollbars are in view.
    const box = await page.locator('#tensors .scroll').boundingBox();
    assert.ok(box && box.width <= 1280 && box.height <= 900, JSON.stringify(box));
    const shot = join(tmp.dir, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 20_000);
  });

  test('a click on a header sorts the rows (again: reversed); the header stays in view while the table scrolls', async () => {
    const names = () => page.locator('#tensor-table tbody tr td.name').allTextContents();
    const bytesOf = async () => (await page.locator('#tensor-table tbody tr').evaluateAll((trs) => trs.map((tr) => Number((tr as any).cells[11].dataset.v))));
    const before = await names();
    await page.locator('#tensor-table thead th', { hasText: /^bytes$/ }).click();
    const asc = await bytesOf();
    assert.notDeepEqual(await names(), before, 'the order changed');
    assert.deepEqual(asc, [...asc].sort((a, b) => a - b));
    await page.locator('#tensor-table thead th', { hasText: /^bytes$/ }).click();
    const desc = await bytesOf();
    assert.deepEqual(desc, [...desc].sort((a, b) => b - a));
    await page.locator('#tensor-table thead th', { hasText: /^tensor$/ }).click();
    assert.deepEqual(await names(), before, 'sorting by name restores the layer order');

    await page.locator('#tensors .scroll').evaluate((el: any) => el.scrollTo(0, 400));
    const scroller = (await page.locator('#tensors .scroll').boundingBox())!;
    const th = (await page.locator('#tensor-table thead th').first().boundingBox())!;
    assert.ok(Math.abs(th.y - scroller.y) <= 2, `header at ${th.y}, scroll box top ${scroller.y}`);
  });

  test('typing filters the rows', async () => {
    await page.locator('#tensor-filter').fill('q_proj');
    const visible = await page.locator('#tensor-table tbody tr:visible td.name').allTextContents();
    assert.equal(visible.length, 5);
    assert.ok(visible.every((n) => n.includes('q_proj')));
    assert.match((await page.locator('#tensor-count').textContent())!, /^5 of \d+ tensors$/);
    await page.locator('#tensor-filter').fill('');
    assert.ok((await page.locator('#tensor-table tbody tr:visible').count()) > 5);
  });
});
