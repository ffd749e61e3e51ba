/**
 * The /play page in a real browser (headless Chromium, the Debian package, installed by
 * infra/local/ensure-chromium.mjs when missing): type a query, run it, the rows appear in the
 * page's table; a screenshot is kept in .state/play-screenshot.png for a person to look at.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../../infra/local/process.js';
import { target } from './client.js';

let browser: Browser;

beforeAll(async () => {
  const executablePath = execFileSync(process.execPath, [join(repoRoot, 'infra/local/ensure-chromium.mjs')], { encoding: 'utf8' }).trim().split('\n').at(-1)!;
  browser = await puppeteer.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
});
afterAll(async () => {
  await browser?.close();
});

describe('/play page', () => {
  it('runs a typed query and shows its rows', async () => {
    const page = await browser.newPage();
    await page.setViewport({ width: 900, height: 500 });
    await page.goto(new URL('/play', target().url).href);
    await page.type('#user', target().user === 'default' ? '' : target().user);
    await page.type('#password', target().password);
    await page.type('#query', "SELECT number AS n, concat('row ', toString(number)) AS label FROM numbers(3)");
    await page.click('#run');
    await page.waitForFunction("document.querySelectorAll('#result tr').length === 4", { timeout: 15_000 });
    const cells = await page.$$eval('#result tr', (rows) => rows.map((row) => [...row.children].map((cell) => cell.textContent)));
    expect(cells).toEqual([['n', 'label'], ['0', 'row 0'], ['1', 'row 1'], ['2', 'row 2']]);
    expect(await page.$eval('#status', (el) => el.textContent)).toMatch(/^3 rows/);
    mkdirSync(join(repoRoot, '.state'), { recursive: true });
    await page.screenshot({ path: join(repoRoot, '.state/play-screenshot.png') });
  });

  it('shows the server error for a bad query', async () => {
    const page = await browser.newPage();
    await page.goto(new URL('/play', target().url).href);
    await page.type('#query', 'SELECT * FROM no_such_table_play');
    await page.click('#run');
    await page.waitForFunction("document.getElementById('error').textContent !== ''", { timeout: 15_000 });
    expect(await page.$eval('#error', (el) => el.textContent)).toMatch(/^Code: 60\. DB::Exception: .*UNKNOWN_TABLE/);
  });
});
