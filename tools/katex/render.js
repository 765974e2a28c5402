// Render LaTeX strings with KaTeX and report every error.
// Input (stdin): JSON array of {"latex": "...", "display": true|false}.
// Output (stdout): JSON array, one {"ok": bool, "error": string|null} per input, in order.
// Exit status: 0 when every string rendered, 1 when any failed, 2 on bad input.
"use strict";
const katex = require("katex");

let text = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { text += chunk; });
process.stdin.on("end", () => {
  let items;
  try {
    items = JSON.parse(text);
  } catch (error) {
    process.stderr.write(`render.js: input is not JSON: ${error.message}\n`);
    process.exit(2);
  }
  const results = items.map((item) => {
    try {
      katex.renderToString(item.latex, {
        displayMode: Boolean(item.display),
        throwOnError: true,
        strict: "error",
        trust: false,
        maxExpand: 1000,
      });
      return { ok: true, error: null };
    } catch (error) {
      return { ok: false, error: String(error.message || error) };
    }
  });
  process.stdout.write(JSON.stringify(results));
  process.exit(results.every((r) => r.ok) ? 0 : 1);
});
