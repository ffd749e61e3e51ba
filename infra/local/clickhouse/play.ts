/**
 * The endpoint's `/play` page: a small page for running SQL in a browser, like the server's
 * `/play` (same URL, same idea, much smaller). It posts the query to `/` with
 * `default_format=JSONCompact` and shows the rows as a table, or the server's error text.
 * Self-contained: no scripts or styles from elsewhere.
 */

/** HTML of the `/play` page. */
export const playPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ClickHouse Query (embedded)</title>
<style>
  body { font-family: sans-serif; margin: 1em; background: #fafafa; }
  #query { width: 100%; height: 8em; font-family: monospace; font-size: 14px; box-sizing: border-box; }
  #bar { margin: 0.5em 0; display: flex; gap: 0.5em; align-items: center; }
  #bar input { width: 10em; }
  table { border-collapse: collapse; font-family: monospace; font-size: 14px; background: #fff; }
  th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
  th { background: #eee; }
  #error { color: #b00; white-space: pre-wrap; font-family: monospace; }
  #status { color: #555; }
</style>
</head>
<body>
<textarea id="query" spellcheck="false" placeholder="SELECT ... (Ctrl+Enter runs)"></textarea>
<div id="bar">
  <button id="run">Run</button>
  <label>user <input id="user" value="default"></label>
  <label>password <input id="password" type="password"></label>
  <span id="status"></span>
</div>
<div id="error"></div>
<table id="result"></table>
<script>
const $ = (id) => document.getElementById(id);
async function run() {
  $('error').textContent = ''; $('result').replaceChildren(); $('status').textContent = 'running...';
  const started = performance.now();
  const res = await fetch('/?default_format=JSONCompact', {
    method: 'POST', body: $('query').value,
    headers: { 'X-ClickHouse-User': $('user').value, 'X-ClickHouse-Key': $('password').value },
  });
  const text = await res.text();
  const ms = Math.round(performance.now() - started);
  if (!res.ok) { $('error').textContent = text; $('status').textContent = 'error, ' + ms + ' ms'; return; }
  let data;
  try { data = JSON.parse(text); } catch { $('error').textContent = text; $('status').textContent = ms + ' ms'; return; }
  const head = document.createElement('tr');
  for (const column of data.meta) { const th = document.createElement('th'); th.textContent = column.name; head.append(th); }
  $('result').append(head);
  for (const row of data.data) {
    const tr = document.createElement('tr');
    for (const value of row) { const td = document.createElement('td'); td.textContent = typeof value === 'object' ? JSON.stringify(value) : String(value); tr.append(td); }
    $('result').append(tr);
  }
  $('status').textContent = data.rows + ' rows, ' + ms + ' ms';
}
$('run').addEventListener('click', () => void run());
$('query').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); void run(); } });
</script>
</body>
</html>
`;
