/**
 * Renders a dpt bench HTML report in headless Chromium and saves a PNG, to check that the page
 * draws without a network and to put a picture of it in the README; also says whether every table
 * lies inside the page at that width.
 *   node dist/bench/report-screenshot.js REPORT.html OUT.png [WIDTHxHEIGHT]
 * Needs Debian's chromium: apt-get update && apt-get install -y --no-install-recommends chromium
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

/** The first Chromium on PATH, or null. */
export function findChromium(): string | null {
  for (const name of CANDIDATES) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim() !== '') return r.stdout.trim();
  }
  return null;
}

export const INSTALL_HINT = 'no chromium found: apt-get update && apt-get install -y --no-install-recommends chromium';

/** Screenshots a local HTML file; returns the PNG's size in bytes. */
export function screenshot(html: string, png: string, size = '1280x2400'): number {
  const chromium = findChromium();
  if (chromium === null) throw new Error(INSTALL_HINT);
  if (!existsSync(html)) throw new Error(`no report at ${html}: write one with dpt bench --report ${html}`);
  if (!/^\d+x\d+$/.test(size)) throw new Error(`window size must be WIDTHxHEIGHT, e.g. 1280x2400, got '${size}'`);
  const profile = mkdtempSync(join(tmpdir(), 'dpt-chromium-'));
  try {
    execFileSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      // Debian's chromium turns on remote extensions (/etc/chromium.d): without this it looks up Google's hosts
      '--host-resolver-rules=MAP * ~NOTFOUND',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, `--screenshot=${resolve(png)}`,
      `--window-size=${size.replace('x', ',')}`, '--hide-scrollbars', pathToFileURL(resolve(html)).href], { stdio: 'pipe', timeout: 60_000 });
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
  if (!existsSync(png)) throw new Error(`chromium ran but wrote no ${png}`);
  return statSync(png).size;
}

/** Where each table of the report ends, in px from the left, and the page's width, as laid out in a window `width` px wide. */
export function tableEdges(html: string, width = 1280): { pageWidth: number; tableRights: number[] } {
  const chromium = findChromium();
  if (chromium === null) throw new Error(INSTALL_HINT);
  const dir = mkdtempSync(join(tmpdir(), 'dpt-chromium-'));
  try {
    // a copy of the page that writes its measurements into the DOM Chromium dumps
    const probe = `<script>document.body.dataset.edges = JSON.stringify({ pageWidth: document.documentElement.clientWidth, ` +
      `tableRights: [...document.querySelectorAll('table')].map((t) => t.getBoundingClientRect().right) });</script>`;
    const copy = join(dir, 'page.html');
    writeFileSync(copy, readFileSync(html, 'utf8').replace('</body>', `${probe}</body>`));
    const dom = execFileSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${join(dir, 'profile')}`, `--window-size=${width},1000`, '--hide-scrollbars',
      '--dump-dom', pathToFileURL(copy).href], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    const m = /data-edges="([^"]*)"/.exec(dom);
    if (!m) throw new Error(`chromium laid out ${html} but its tables could not be measured`);
    return JSON.parse(m[1]!.replace(/&quot;/g, '"')) as { pageWidth: number; tableRights: number[] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const invoked = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invoked) {
  const [html, png, size] = process.argv.slice(2);
  if (!html || !png) {
    process.stderr.write('usage: node dist/bench/report-screenshot.js REPORT.html OUT.png [WIDTHxHEIGHT]\n');
    process.exitCode = 2;
  } else {
    try {
      const bytes = screenshot(html, png, size);
      console.log(`Wrote ${png} (${bytes.toLocaleString('en-US')} bytes) from ${html}`);
      const { pageWidth, tableRights } = tableEdges(html, Number((size ?? '1280x').split('x')[0]));
      const over = tableRights.filter((r) => r > pageWidth);
      console.log(over.length === 0
        ? `All ${tableRights.length} tables lie inside the ${pageWidth} px page.`
        : `${over.length} of ${tableRights.length} tables run past the ${pageWidth} px page (right edges ${over.map(Math.round).join(', ')} px).`);
    } catch (e) {
      process.stderr.write(`report-screenshot: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
  }
}
