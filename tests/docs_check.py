#!/usr/bin/env python3
"""Every file a document names exists: Markdown links to files, and backticked repository paths
(`shared/core/src/terms.rs`, `bench/quality.py --mdm-train`, `docs/privacy.md`), in every tracked
Markdown file. A path under a top-level folder of the repository (or a top-level file) is checked;
URLs, API routes (`/v1/...`), item keys (`TERM#...`), placeholders (`{entity}`, `*`, `...`) and
generated folders (`.local/`, `target/`) are not paths to check. And every figure README.md
states (a number with a unit: seconds, GB, %, ×, units, records/s, $) is either a limit or a
default (said so: "default", "at most", "up to", "over", "within", "every") or appears in
docs/benchmarks.md, the one place measured figures live. Exit 1 with each finding.

    python3 tests/docs_check.py
"""
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
TICKS = re.compile(r"`([^`\n]+)`")
GENERATED = {".local", "target", ".venv", ".venv-bench"}


def tracked_markdown():
    out = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
    return [p for p in out.stdout.split() if p]


def top_level():
    return {n for n in os.listdir(ROOT) if not n.startswith(".git")} | {".ci"}


def candidate(token, tops):
    """The repository path a backticked token names, or None."""
    word = token.strip().split()[0] if token.strip() else ""
    word = re.sub(r":\d+(-\d+)?$", "", word).rstrip(".,;:)")
    if not word or word.startswith(("/", "http", "~")) or any(c in word for c in "{}*<>$#…|=\\\"'"):
        return None
    if "..." in word:
        return None
    first = word.split("/")[0]
    if first in GENERATED or first not in tops:
        return None
    if "/" not in word and not os.path.splitext(word)[1]:
        return None  # a bare word that happens to be a folder name
    return word


FIGURE = re.compile(
    r"(?:~|about |≈)?\$?\d[\d,.]*\s?(?:ms|µs|s|min|minutes|seconds|hours|GB|GiB|MB|MiB|KB|%|×|units|records/s|/s)(?!\w)"
)
LIMIT = re.compile(r"(default|at most|up to|over|within|every|limit|max)\W+(\w+\W+){0,2}$", re.I)


def readme_figures():
    """README figures that are neither limits nor in docs/benchmarks.md."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        prose = re.sub(r"```.*?```", "", f.read(), flags=re.S)
    with open(os.path.join(ROOT, "docs", "benchmarks.md"), encoding="utf-8") as f:
        bench = f.read()
    found = []
    for line in prose.splitlines():
        for m in FIGURE.finditer(line):
            figure = m.group(0).strip()
            number = re.sub(r"^(~|about |≈)", "", figure)
            if LIMIT.search(line[: m.start()]) or number in bench:
                continue
            found.append(f"README.md: figure {figure!r} is not in docs/benchmarks.md (in: {line.strip()[:100]!r})")
    return found


def main():
    tops = top_level()
    missing = []
    for doc in tracked_markdown():
        base = os.path.dirname(os.path.join(ROOT, doc))
        with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
            text = f.read()
        # Fenced code blocks hold commands and examples, not references.
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        for n, line in enumerate(prose.splitlines(), 1):
            for target in LINK.findall(line):
                if target.startswith(("http://", "https://", "mailto:", "#")):
                    continue
                path = target.split("#")[0]
                if path and not os.path.exists(os.path.normpath(os.path.join(base, path))):
                    missing.append(f"{doc}: link {target}")
            for token in TICKS.findall(line):
                path = candidate(token, tops)
                if path and not os.path.exists(os.path.join(ROOT, path)):
                    missing.append(f"{doc}: `{token}`")
    figures = readme_figures()
    for m in missing + figures:
        print(m)
    print(
        f"docs check: {len(tracked_markdown())} Markdown files, {len(missing)} missing paths, "
        f"{len(figures)} README figures outside docs/benchmarks.md"
    )
    return 1 if missing or figures else 0


if __name__ == "__main__":
    sys.exit(main())
