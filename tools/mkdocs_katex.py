"""mkdocs hook: copy KaTeX (installed by `npm ci` in tools/katex) into the built site.

The docs load KaTeX from `assets/katex/` of the site itself, so they render math offline. When
node_modules is absent the site still builds (the math then shows as LaTeX source) and the hook
says so at INFO level.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.katex")

KATEX_DIST = Path(__file__).resolve().parent / "katex" / "node_modules" / "katex" / "dist"


def on_post_build(config, **kwargs) -> None:
    target = Path(config["site_dir"]) / "assets" / "katex"
    if not KATEX_DIST.is_dir():
        log.info("KaTeX not installed in %s (run `npm ci` in tools/katex); math is not rendered", KATEX_DIST)
        return
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(KATEX_DIST / "katex.min.js", target)
    shutil.copy2(KATEX_DIST / "katex.min.css", target)
    shutil.copytree(KATEX_DIST / "fonts", target / "fonts", dirs_exist_ok=True)
    shutil.copytree(KATEX_DIST / "contrib", target / "contrib", dirs_exist_ok=True)
